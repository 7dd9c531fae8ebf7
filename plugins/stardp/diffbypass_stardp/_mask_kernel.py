"""Private numba kernel of :func:`~diffbypass_stardp.star_mask` (validation lives there).

For one polygon with vertices :math:`V_k` around centre :math:`c` (``rel = V - c``):

1. the signed angle of every wedge :math:`(V_k, V_{k+1})` seen from :math:`c`,
   ``atan2(cross, dot)``; a polygon in angular order has all of them of one sign, summing to
   :math:`\\pm 2\\pi` (else it is reported as not star-shaped);
2. the disc closer than every edge's line is inside, the outside of the disc through the
   farthest vertex is outside; only pixels of the ring between (and of the bounding box) are
   tested further;
3. a ring pixel's angle from vertex 0 gives its wedge (binary search over the cumulative wedge
   angles), and it is inside when it lies on the centre's side of that wedge's edge.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from diffbypass_stardp._config import JIT


@njit(**JIT)
def _fill_one(rel, cx, cy, out, order, start):  # pragma: no cover - compiled
    """Fill ``out`` (H, W) for one polygon; returns False if it is not star-shaped."""
    n = rel.shape[0]
    h, w = out.shape
    total = 0.0
    sign = 0.0
    for k in range(n):
        ax, ay = rel[k, 0], rel[k, 1]
        bx, by = rel[(k + 1) % n, 0], rel[(k + 1) % n, 1]
        if ax == 0.0 and ay == 0.0:
            return False
        turn = math.atan2(ax * by - ay * bx, ax * bx + ay * by)
        if turn == 0.0 or abs(turn) >= math.pi or (sign != 0.0 and turn * sign < 0.0):
            return False
        sign = 1.0 if turn > 0.0 else -1.0
        total += turn
    if abs(abs(total) - 2.0 * math.pi) > 1e-6:
        return False
    for k in range(n):  # counter-clockwise order (positive wedges)
        order[k] = k if sign > 0.0 else (n - k) % n
    start[0] = 0.0
    low2, high2 = np.inf, 0.0
    for k in range(n):
        ax, ay = rel[order[k], 0], rel[order[k], 1]
        bx, by = rel[order[(k + 1) % n], 0], rel[order[(k + 1) % n], 1]
        ex, ey = bx - ax, by - ay
        cross = ex * ay - ey * ax
        low2 = min(low2, cross * cross / max(ex * ex + ey * ey, 1e-300))
        high2 = max(high2, ax * ax + ay * ay)
        if k + 1 < n:
            start[k + 1] = start[k] + math.atan2(ax * by - ay * bx, ax * bx + ay * by)
    low2 *= 1.0 - 1e-9
    high2 *= 1.0 + 1e-9
    theta0 = math.atan2(rel[order[0], 1], rel[order[0], 0])
    reach = math.sqrt(high2)
    y0, y1 = max(0, int(math.floor(cy - reach))), min(h - 1, int(math.ceil(cy + reach)))
    x0, x1 = max(0, int(math.floor(cx - reach))), min(w - 1, int(math.ceil(cx + reach)))
    two_pi = 2.0 * math.pi
    for y in range(y0, y1 + 1):
        qy = y - cy
        for x in range(x0, x1 + 1):
            qx = x - cx
            r2 = qx * qx + qy * qy
            if r2 < low2:
                out[y, x] = True
            elif r2 <= high2:
                psi = math.atan2(qy, qx) - theta0
                psi -= two_pi * math.floor(psi / two_pi)
                lo, hi = 0, n - 1  # the last k with start[k] <= psi
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if start[mid] <= psi:
                        lo = mid
                    else:
                        hi = mid - 1
                a = order[lo]
                b = order[(lo + 1) % n]
                ax, ay = rel[a, 0], rel[a, 1]
                ex, ey = rel[b, 0] - ax, rel[b, 1] - ay
                out[y, x] = ex * (qy - ay) - ey * (qx - ax) > 0.0
    return True


@njit(**JIT)
def fill_stars(poly, centers, out, bad):  # pragma: no cover - compiled
    """Fill ``out`` (B, H, W) (all False on entry) for polygons (B, N, 2) around centres (B, 2);
    ``bad[b]`` is set for polygons that are not star-shaped around their centre."""
    n_batch, n = poly.shape[:2]
    rel = np.empty((n, 2), dtype=np.float64)
    order = np.empty(n, dtype=np.int64)
    start = np.empty(n, dtype=np.float64)
    for b in range(n_batch):
        for k in range(n):
            rel[k, 0] = poly[b, k, 0] - centers[b, 0]
            rel[k, 1] = poly[b, k, 1] - centers[b, 1]
        bad[b] = not _fill_one(rel, centers[b, 0], centers[b, 1], out[b], order, start)
