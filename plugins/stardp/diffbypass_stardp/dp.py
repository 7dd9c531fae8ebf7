r"""The exact cyclic dynamic programme on a star pattern (the non-differentiable black box)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Union, overload

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least
from diffbypass_stardp import _config, _dp_kernel
from diffbypass_stardp._checks import (
    check_cost,
    check_finite,
    check_magnitude,
    check_penalty_range,
    lam_numpy,
    real_numpy,
)

__all__ = ["dp_solve"]

#: A smoothness weight: a number, or a tensor/array of shape ``()`` or ``(B,)``.
LamLike = Union[float, Tensor, np.ndarray]

_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The private thread pool (re-created in a forked child, whose copy has no threads)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(_config.THREADS, thread_name_prefix="diffbypass-stardp")
            _pool_pid = os.getpid()
        return _pool


def _solve(cost: np.ndarray, delta: int, lam: np.ndarray | None, out: np.ndarray) -> None:
    """Run the kernel on chunks of the batch, in parallel when the batch is large enough
    (``lam is None``: no penalty, the kernel's plain specialisation)."""
    n_batch = len(cost)
    if _config.THREADS <= 1 or n_batch < 2 * _config.MIN_CHUNK:
        _dp_kernel.solve_batch(cost, delta, lam, out)
        return
    chunks = min(4 * _config.THREADS, n_batch // _config.MIN_CHUNK)
    edges = np.linspace(0, n_batch, chunks + 1).astype(int)
    pool = _executor()
    jobs = [pool.submit(_dp_kernel.solve_batch, cost[lo:hi], delta,
                        None if lam is None else lam[lo:hi], out[lo:hi])
            for lo, hi in zip(edges[:-1], edges[1:])]
    for job in jobs:
        job.result()


@overload
def dp_solve(cost: Tensor, delta: int = ..., lam: LamLike = ...) -> Tensor: ...
@overload
def dp_solve(cost: np.ndarray, delta: int = ..., lam: LamLike = ...) -> np.ndarray: ...


def dp_solve(
    cost: Tensor | np.ndarray, delta: int = 1, lam: LamLike = 0.0
) -> Tensor | np.ndarray:
    r"""Exact minimum-cost closed contour through a star pattern.

    For each batch element, with lines :math:`n = 0, \dots, N-1` and points
    :math:`i = 0, \dots, M-1`, returns

    .. math::

        v^\star = \operatorname*{arg\,min}_{v \in \{0..M-1\}^N} \sum_{n=0}^{N-1}
        \bigl(c[n, v_n] + \lambda\,|v_n - v_{(n+1) \bmod N}|\bigr)
        \quad \text{s.t.} \quad |v_n - v_{(n+1) \bmod N}| \le \delta \;\; \forall n,

    the closed-contour DP of Nguyen (2019), eq. 4.1, with an optional smoothness penalty
    :math:`\lambda \ge 0` on every index step, the closing pair (line :math:`N-1`, line 0)
    included (:math:`\lambda = 0`, the default: the thesis' DP). Its pairwise energy 4.2 is
    the sum of two unary terms, one per line, so summing a unary cost such as
    :func:`~diffbypass_stardp.radial_difference` over the lines is the same problem (up to a
    factor 2).

    **Ties** (several optimal contours): the lexicographically smallest one is returned, i.e.
    the smallest :math:`v_0`, then the smallest :math:`v_1`, and so on. This is exact whenever
    the sums of costs (and penalties) are exact in float64, the type they are accumulated in (e.g.
    integer-valued or dyadic costs); contours whose energies differ only by rounding count as
    different energies.

    The solver is exact and deterministic (bound-and-prune over the start index :math:`v_0`,
    see :mod:`diffbypass_stardp._dp_kernel`), written in numba; large batches are split into
    chunks solved in parallel threads (``NUMBA_NUM_THREADS``, default: all cores).

    Args:
        cost: unary costs of shape :math:`(B, N, M)` with :math:`N \ge 3` lines and
            :math:`M \ge 2` points per line, as a ``torch.Tensor`` (any device; detached) or
            ``numpy.ndarray``. float32 and float64 are used as they are; float16 and bfloat16
            are converted to float32 and integer arrays to float64 (both exact); bool and
            complex arrays are rejected. Non-contiguous input is copied to a contiguous array.
            NaN and inf are rejected. Sums of costs are accumulated in float64, so every
            finite float32 cost is solved exactly as given; float64 costs must satisfy
            :math:`\max|c| \le 1.79 \cdot 10^{308} / (2N)` (else the sums could overflow:
            an error, never a wrong contour).
        delta: the largest index change :math:`\delta \ge 0` between neighbouring lines
            (thesis: 1). Values :math:`\ge M - 1` leave the lines unconstrained (per-line
            argmin).
        lam: the smoothness weight :math:`\lambda \ge 0`: a number, or a tensor/array of
            shape :math:`()` (shared) or :math:`(B,)` (one per contour), finite and
            :math:`\ge 0` (used in float64, detached). 0 (default) costs nothing.

    Returns:
        Indices :math:`v^\star` of shape :math:`(B, N)`, dtype int64: a ``torch.LongTensor`` on
        ``cost``'s device for a tensor input, a NumPy array for a NumPy input.

    Raises:
        TypeError: ``cost`` is neither a tensor nor an array.
        ValueError: wrong shape, :math:`N < 3`, :math:`M < 2`, a bad ``delta``, an unsupported
            dtype, NaN/inf in ``cost``, float64 costs too large to sum, or a bad ``lam``.

    Example:
        >>> import numpy as np
        >>> cost = np.zeros((1, 4, 5), dtype=np.float32)
        >>> cost[0, :, 3] = -1.0           # every line prefers point 3 ...
        >>> cost[0, 2, 1] = -10.0          # ... but line 2 strongly prefers point 1
        >>> dp_solve(cost, delta=1)        # |v_n - v_n+1| <= 1 around the closed contour
        array([[3, 2, 1, 2]])
        >>> dp_solve(cost, delta=4)        # unconstrained: per-line argmin
        array([[3, 3, 1, 3]])
        >>> dp_solve(cost, delta=1, lam=1.0)   # 4 steps cost 4: the circle (-10) beats -11 + 4
        array([[1, 1, 1, 1]])

    References:
        T. Nguyen, *Differentiable Bypass* (MSc thesis, 2019), eq. 4.1-4.2 and Algorithms 1-2.
    """
    n_batch, n_lines, m = check_cost(cost)
    delta = int_at_least("delta", delta, 0)
    arr = real_numpy("cost", cost)
    peak = float(np.abs(arr).max()) if arr.size else 0.0
    if not np.isfinite(peak):
        check_finite("cost", arr)
    if arr.dtype == np.float64:  # float32 costs are summed in float64 and cannot overflow
        check_magnitude("cost", peak, np.finfo(np.float64).max / (2 * n_lines), "float64", n_lines)
    delta = min(delta, m - 1)
    weights = lam_numpy(lam, n_batch)  # None: no penalty (the kernel's plain specialisation)
    if weights is not None:  # penalties at most float64 max / (4N): costs and penalties sum below
        check_penalty_range(float(weights.max()), delta, np.finfo(np.float64).max / (4 * n_lines),
                            n_lines)
    out = np.empty((n_batch, n_lines), dtype=np.int64)
    if n_batch:
        _solve(arr, delta, weights, out)
    if isinstance(cost, Tensor):
        return torch.from_numpy(out).to(cost.device)
    return out
