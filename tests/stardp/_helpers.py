"""Reference implementations for the stardp tests: brute-force enumeration and synthetic maps."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
from scipy.special import logsumexp


@lru_cache(maxsize=None)
def all_contours(n_lines: int, m: int) -> np.ndarray:
    """Every ``v`` in ``{0..M-1}^N``, in lexicographic order, shape ``(M**N, N)``."""
    return np.array(list(itertools.product(range(m), repeat=n_lines)), dtype=np.int64)


@lru_cache(maxsize=None)
def feasible_contours(n_lines: int, m: int, delta: int) -> np.ndarray:
    """The closed contours with ``|v_n - v_(n+1 mod N)| <= delta``, lexicographic order."""
    v = all_contours(n_lines, m)
    ok = (np.abs(v - np.roll(v, -1, axis=1)) <= delta).all(axis=1)
    return v[ok]


def variation(contours: np.ndarray) -> np.ndarray:
    """Total cyclic variation ``sum_n |v_n - v_(n+1 mod N)|`` of each contour (the closing
    pair included)."""
    return np.abs(contours - np.roll(contours, -1, axis=-1)).sum(axis=-1)


def energies(cost: np.ndarray, contours: np.ndarray, lam: float = 0.0) -> np.ndarray:
    """``E(v) = sum_n cost[n, v_n] + lam * variation(v)`` for one ``(N, M)`` cost and many
    contours, in float64."""
    n = np.arange(cost.shape[0])
    e = cost.astype(np.float64)[n, contours].sum(axis=1)
    return e + lam * variation(contours) if lam else e


def brute_force(cost: np.ndarray, delta: int, lam: float = 0.0) -> tuple[float, np.ndarray]:
    """Optimal energy and the lexicographically smallest optimal contour of one ``(N, M)`` cost
    (with the smoothness penalty ``lam``)."""
    v = feasible_contours(cost.shape[0], cost.shape[1], delta)
    e = energies(cost, v, lam)
    best = e.min()
    return float(best), v[int(np.argmax(e == best))]


def brute_soft(
    cost: np.ndarray, delta: int, tau: float, lam: float = 0.0
) -> tuple[float, np.ndarray, float]:
    """Soft energy, marginals and expected variation (the soft energy's derivative in ``lam``)
    of one ``(N, M)`` cost, by enumerating the feasible contours."""
    v = feasible_contours(cost.shape[0], cost.shape[1], delta)
    e = energies(cost, v, lam)
    z = -tau * logsumexp(-e / tau)
    p = np.exp(-(e - z) / tau)  # probabilities of the contours
    marg = np.zeros(cost.shape)
    for n in range(cost.shape[0]):
        np.add.at(marg[n], v[:, n], p)
    return float(z), marg, float(p @ variation(v))


def is_feasible(v: np.ndarray, delta: int) -> bool:
    return bool((np.abs(v - np.roll(v, -1, axis=-1)) <= delta).all())


def disc_mask(shape: tuple[int, int], center: tuple[float, float], radii: tuple[float, float],
              angle: float = 0.0) -> np.ndarray:
    """Boolean ellipse (a disc for equal radii): pixel centres with ((x', y') / radii)^2 <= 1."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dx, dy = xx - center[0], yy - center[1]
    c, s = np.cos(angle), np.sin(angle)
    u, w = c * dx + s * dy, -s * dx + c * dy
    return (u / radii[0]) ** 2 + (w / radii[1]) ** 2 <= 1.0
