"""Reference implementations for the stardp tests: brute-force enumeration and synthetic maps."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np


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


def energies(cost: np.ndarray, contours: np.ndarray) -> np.ndarray:
    """``E(v) = sum_n cost[n, v_n]`` for one ``(N, M)`` cost and many contours, in float64."""
    n = np.arange(cost.shape[0])
    return cost.astype(np.float64)[n, contours].sum(axis=1)


def brute_force(cost: np.ndarray, delta: int) -> tuple[float, np.ndarray]:
    """Optimal energy and the lexicographically smallest optimal contour of one ``(N, M)`` cost."""
    v = feasible_contours(cost.shape[0], cost.shape[1], delta)
    e = energies(cost, v)
    best = e.min()
    return float(best), v[int(np.argmax(e == best))]


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
