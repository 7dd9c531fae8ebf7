r"""Private numba kernels of the exact cyclic DP; the public entry point is :func:`~.dp.dp_solve`.

The problem for one contour: given ``c`` of shape ``(N, M)`` and a smoothness weight
``lam >= 0``, find ``v`` minimising
``sum_n c[n, v[n]] + lam * |v[n] - v[(n + 1) % N]|``
subject to ``|v[n] - v[(n + 1) % N]| <= delta``.

The penalty enters in one place, :func:`_window_min` (the minimum over the ``2 delta + 1``
predecessors of a state adds ``lam * |d|`` to each), plus the closure row and the read-off,
which add ``lam * |k - s|`` and ``lam * |k - v[n - 1]|``. No penalty is written ``lam = None``
(never ``0.0``): numba compiles a separate specialisation for a ``None`` argument and prunes the
``lam is None`` branches before typing, so the unpenalised kernel is the plain DP's code, with
no per-row test of ``lam`` (a runtime ``lam != 0`` test made it measurably slower, see
``benchmarks/single_input``). :func:`solve_batch` chooses the specialisation once per contour;
the penalised one is compiled on its first use only.

Algorithm (exact; "bound, then evaluate starts in bound order"):

1. *Open bound.* One backward pass of the open-chain DP (the closure ``v[N-1] ~ v[0]`` and its
   penalty ``lam * |v[N-1] - v[0]| >= 0`` dropped) gives, for every start ``s``, a lower bound
   ``bound[s]`` on the best closed contour with ``v[0] = s``. The open problem is a relaxation
   and float rounding is monotone, so the inequality also holds for the computed values.
2. *Exact evaluation in bound order.* Starts are tried in increasing ``bound[s]`` (smallest ``s``
   first among equal bounds). For one start the closed backward DP only visits the band
   ``|j - s| <= delta * min(n, N - n)`` (states reachable from ``s`` and back to it), much
   narrower than ``M`` on most lines. The search stops at the first start whose bound exceeds
   the best closed energy found (or equals it with a larger index): no later start can beat or
   tie-break it.
3. *Back-tracking without back-pointers.* The cost-to-go table of the best start is kept (two
   table buffers, swapped by offset, never copied) and the contour is read off forwards, taking
   the smallest index among equal cost-to-go values. With "smallest ``s`` among equal energies"
   this yields the lexicographically smallest optimal contour.

Sums are accumulated in float64 whatever the cost dtype: a float32 cost is at most
:math:`3.4 \cdot 10^{38}` in magnitude, so :math:`N` of them never overflow a float64 sum (in
float32, :math:`|c| \gtrsim 10^{37}` overflowed to :math:`\pm\infty` and returned a wrong contour
without an error), and ties are decided on sums that are exact for far more float32 costs. A float64
cost must keep :math:`N \max|c|` below the float64 maximum; :func:`~.dp.dp_solve` checks that.

All tables are flat 1-D arrays addressed by offsets (no per-row views in the hot loops). Rows are
padded with ``2 * delta`` cells of ``+inf`` on both sides so that window minima need no bounds
checks. ``delta`` must already be clipped to ``M - 1`` by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from diffbypass_stardp._config import JIT


@njit(**JIT)
def _window_min(src, so, dst, lo, hi, delta, lam):  # pragma: no cover - compiled
    """``dst[j] = min(src[so + j + d] + lam * |d| for |d| <= delta)`` for ``lo <= j <= hi``.

    ``lam is None``: no penalty (pruned at compile time, see the module).
    """
    if lam is None:
        if delta == 1:  # the thesis setting: a fused, vectorisable three-way minimum
            for j in range(lo, hi + 1):
                x = src[so + j - 1]
                y = src[so + j]
                z = src[so + j + 1]
                x = x if x < y else y
                dst[j] = x if x < z else z
        else:
            for j in range(lo, hi + 1):
                x = src[so + j - delta]
                for d in range(1 - delta, delta + 1):
                    y = src[so + j + d]
                    x = y if y < x else x
                dst[j] = x
    elif delta == 1:
        for j in range(lo, hi + 1):
            x = src[so + j - 1] + lam
            y = src[so + j]
            z = src[so + j + 1] + lam
            x = y if y < x else x
            dst[j] = z if z < x else x
    else:
        for j in range(lo, hi + 1):
            x = src[so + j - delta] + lam * delta
            for d in range(1 - delta, delta + 1):
                y = src[so + j + d] + lam * abs(d)
                x = y if y < x else x
            dst[j] = x


@njit(**JIT)
def _inf_margins(row, o, lo, hi, pad):  # pragma: no cover - compiled
    """Write ``+inf`` into the ``pad`` cells left of ``lo`` and right of ``hi`` (row at ``o``)."""
    for k in range(o + lo, o + lo + pad):
        row[k] = np.inf
    for k in range(o + hi + pad + 1, o + hi + 2 * pad + 1):
        row[k] = np.inf


@njit(**JIT)
def _open_bound(c, delta, lam, row, tmp, bound):  # pragma: no cover - compiled
    """``bound[s]``: best open chain (closure dropped) with ``v[0] = s``; ``row`` is scratch."""
    n_lines, m = c.shape
    pad = 2 * delta
    for k in range(m + 2 * pad):
        row[k] = np.inf
    for j in range(m):
        row[pad + j] = c[n_lines - 1, j]
    for n in range(n_lines - 2, -1, -1):
        _window_min(row, pad, tmp, 0, m - 1, delta, lam)
        for j in range(m):
            row[pad + j] = c[n, j] + tmp[j]
    for j in range(m):
        bound[j] = row[pad + j]


@njit(**JIT)
def _closed_energy(c, s, delta, lam, table, base, tmp):  # pragma: no cover - compiled
    """Best closed contour with ``v[0] = s``; leaves its cost-to-go in ``table`` rows 1..N-1."""
    n_lines, m = c.shape
    pad = 2 * delta
    width = m + 2 * pad
    o = base + (n_lines - 1) * width
    lo, hi = max(0, s - delta), min(m - 1, s + delta)
    _inf_margins(table, o, lo, hi, pad)
    for j in range(lo, hi + 1):  # the closure: within delta of s, its penalty added
        table[o + pad + j] = c[n_lines - 1, j]
        if lam is not None:
            table[o + pad + j] += lam * abs(j - s)
    for n in range(n_lines - 2, 0, -1):
        reach = delta * min(n, n_lines - n)
        lo, hi = max(0, s - reach), min(m - 1, s + reach)
        _window_min(table, o + pad, tmp, lo, hi, delta, lam)
        o -= width
        _inf_margins(table, o, lo, hi, pad)
        for j in range(lo, hi + 1):
            table[o + pad + j] = c[n, j] + tmp[j]
    _window_min(table, o + pad, tmp, s, s, delta, lam)
    return c[0, s] + tmp[s]


@njit(**JIT)
def _solve_one(c, delta, lam, out, table, tmp, bound, tried):  # pragma: no cover - compiled
    n_lines, m = c.shape
    pad = 2 * delta
    width = m + 2 * pad
    size = n_lines * width
    _open_bound(c, delta, lam, table, tmp, bound)  # uses the first row of buffer 0 as scratch
    for t in range(m):
        tried[t] = False

    best, best_s, best_base = np.inf, -1, 0
    for _ in range(m):
        s, low = -1, np.inf
        for t in range(m):  # untried start with the smallest bound, smallest index on ties
            if not tried[t] and (s < 0 or bound[t] < low):
                s, low = t, bound[t]
        if low > best or (low == best and s > best_s):
            break
        tried[s] = True
        base = size - best_base  # the buffer not holding the best table so far
        energy = _closed_energy(c, s, delta, lam, table, base, tmp)
        if energy < best or (energy == best and s < best_s):
            best, best_s, best_base = energy, s, base

    out[0] = best_s
    for n in range(1, n_lines):
        prev = out[n - 1]
        lo, hi = max(0, prev - delta), min(m - 1, prev + delta)
        o = best_base + n * width + pad
        if lam is None:
            arg, low = lo, table[o + lo]
            for k in range(lo + 1, hi + 1):
                if table[o + k] < low:
                    arg, low = k, table[o + k]
        else:  # the same sums as _window_min's, so the minimum is found exactly
            arg, low = lo, table[o + lo] + lam * abs(lo - prev)
            for k in range(lo + 1, hi + 1):
                x = table[o + k] + lam * abs(k - prev)
                if x < low:
                    arg, low = k, x
        out[n] = arg


@njit(**JIT)
def solve_batch(cost, delta, lam, out):  # pragma: no cover - compiled
    """Solve every contour of ``cost`` ``(B, N, M)`` into ``out`` ``(B, N)`` int64 (one thread).

    ``lam`` is the float64 smoothness weight of every contour, shape ``(B,)``, or ``None`` (no
    penalty anywhere: the plain kernel only). A contour whose weight is 0 runs the plain
    specialisation too, so its results and speed do not depend on its batch's other weights.

    Releases the GIL (``nogil``): :func:`~diffbypass_stardp.dp_solve` runs chunks of a batch on
    several threads at once. Scratch buffers are allocated once per call.
    """
    n_batch, n_lines, m = cost.shape
    width = m + 4 * delta
    table = np.empty(2 * n_lines * width, dtype=np.float64)  # sums in float64: see the module
    tmp = np.empty(m, dtype=np.float64)
    bound = np.empty(m, dtype=np.float64)
    tried = np.empty(m, dtype=np.bool_)
    for b in range(n_batch):
        if lam is None:
            _solve_one(cost[b], delta, None, out[b], table, tmp, bound, tried)
        elif lam[b] == 0.0:
            _solve_one(cost[b], delta, None, out[b], table, tmp, bound, tried)
        else:
            _solve_one(cost[b], delta, lam[b], out[b], table, tmp, bound, tried)
