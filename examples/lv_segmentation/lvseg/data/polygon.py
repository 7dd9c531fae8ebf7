r"""Polygon filling with a stated pixel-centre convention; contour files (:func:`read_contour`).

Convention used throughout :mod:`lvseg`: pixel ``(row r, column c)`` is the unit square centred
at the point :math:`(x, y) = (c, r)`; a point ``(x, y)`` is (column, row). A pixel belongs to a
polygon iff its *centre* lies inside the polygon (even-odd rule). Centres lying exactly on an edge
are decided by the half-open rule of scanline rasterisers: inside on a left or top edge, outside
on a right or bottom edge ("top" = smaller row). Hence an axis-aligned rectangle with corners on
pixel centres, ``x0 <= x < x1, y0 <= y < y1``, fills exactly ``(x1 - x0) * (y1 - y0)`` pixels, and
the pixel count of any polygon approximates its area.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["polygon_to_mask", "read_contour"]


def polygon_to_mask(
    points: np.ndarray | Sequence[Sequence[float]], shape: tuple[int, int]
) -> np.ndarray:
    r"""Fill a closed polygon given by its vertices.

    Args:
        points: vertices :math:`(P, 2)` as ``(x, y)`` = (column, row) pixel coordinates,
            :math:`P \ge 3`; the last vertex connects back to the first (closed implicitly, a
            repeated first vertex is harmless). Vertices may lie outside the image.
        shape: output shape ``(H, W)``.

    Returns:
        ``bool`` mask of shape :math:`(H, W)`: pixels whose centre is inside (module docstring).

    Raises:
        ValueError: if ``points`` is not a finite ``(P, 2)`` array with ``P >= 3`` or ``shape``
            is not two positive integers.

    Example:
        >>> polygon_to_mask([(1, 1), (3, 1), (3, 3), (1, 3)], (4, 5)).astype(int)
        array([[0, 0, 0, 0, 0],
               [0, 1, 1, 0, 0],
               [0, 1, 1, 0, 0],
               [0, 0, 0, 0, 0]])
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (P, 2) as (x, y); got {pts.shape}")
    if pts.shape[0] < 3:
        raise ValueError(f"points must hold at least 3 vertices; got {pts.shape[0]}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite; got NaN or inf coordinates")
    if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(f"shape must be (H, W), two positive integers; got {shape!r}")
    height, width = int(shape[0]), int(shape[1])
    mask = np.zeros((height, width), dtype=bool)

    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    r_lo = max(0, int(np.ceil(y0.min())))
    r_hi = min(height - 1, int(np.floor(y0.max())))
    c_lo = max(0, int(np.ceil(x0.min())))
    c_hi = min(width - 1, int(np.floor(x0.max())))
    if r_lo > r_hi or c_lo > c_hi:
        return mask
    rows = np.arange(r_lo, r_hi + 1, dtype=np.float64)[:, None]  # (R, 1)
    # half-open in y: an edge covers rows y_min <= r < y_max, so a vertex is counted once
    crosses = ((y0 <= rows) & (rows < y1)) | ((y1 <= rows) & (rows < y0))  # (R, P)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (rows - y0) * (x1 - x0) / (y1 - y0)
    x_cross = np.where(crosses, x_cross, -np.inf)
    cols = np.arange(c_lo, c_hi + 1, dtype=np.float64)
    # ray towards +x: inside iff an odd number of crossings lies strictly right of the centre
    n_right = (x_cross[:, :, None] > cols[None, None, :]).sum(axis=1)  # (R, C)
    mask[r_lo : r_hi + 1, c_lo : c_hi + 1] = (n_right % 2) == 1
    return mask


def read_contour(path: Path) -> np.ndarray:
    """Read a contour file: one ``x y`` point per line (blank lines skipped).

    Returns:
        ``(P, 2)`` float64 points ``(x, y)`` in pixel coordinates, in file order.

    Raises:
        ValueError: naming the first line that is not two numbers.
    """
    points = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 2:
                raise ValueError
            points.append((float(fields[0]), float(fields[1])))
        except ValueError:
            raise ValueError(f"line {number} is not 'x y': {line.strip()!r}") from None
    return np.asarray(points, dtype=np.float64).reshape(-1, 2)
