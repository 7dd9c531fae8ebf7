"""Private numba kernels of :func:`~diffbypass_stardp.segment_stars` (validation lives there).

Each repeats, in one compiled loop, the float32 arithmetic of the functions it stands for, in
the same order, so the results are bit-identical (tested): :func:`~diffbypass_stardp.star_points`
(centre plus the cached pattern), :func:`~diffbypass_stardp.warp` (``mode="nearest"``,
``padding="border"``: :math:`\\lfloor x + 1/2 \\rfloor`, clamped) and
:func:`~diffbypass_stardp.contour_points` (fractional indices).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from diffbypass_stardp._config import JIT


@njit(**JIT)
def warp_nearest(maps, centers, offsets, points, warped):  # pragma: no cover - compiled
    """``points[b] = centers[b] + offsets``; ``warped[b]`` = ``maps[b]`` at the nearest pixel."""
    h, w = maps.shape[1], maps.shape[2]
    half = np.float32(0.5)
    for b in range(maps.shape[0]):
        for n in range(offsets.shape[0]):
            for i in range(offsets.shape[1]):
                px = centers[b, 0] + offsets[n, i, 0]
                py = centers[b, 1] + offsets[n, i, 1]
                points[b, n, i, 0] = px
                points[b, n, i, 1] = py
                x = min(max(int(math.floor(px + half)), 0), w - 1)
                y = min(max(int(math.floor(py + half)), 0), h - 1)
                warped[b, n, i] = maps[b, y, x]


@njit(**JIT)
def contour(indices, points, out):  # pragma: no cover - compiled
    """Linear interpolation between the star points at ``floor(v)`` and ``floor(v) + 1``."""
    m = points.shape[2]
    for b in range(points.shape[0]):
        for n in range(points.shape[1]):
            v = indices[b, n]
            lo = min(int(math.floor(v)), m - 2)
            t = v - np.float32(lo)
            for k in range(2):
                p0 = points[b, n, lo, k]
                out[b, n, k] = p0 + t * (points[b, n, lo + 1, k] - p0)
