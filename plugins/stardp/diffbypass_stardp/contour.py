r"""From indices on the star pattern to image-space contours and masks, and back."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from diffbypass_stardp._checks import check_array, check_mask_shape, check_offset
from diffbypass_stardp.warp import warp

__all__ = ["EDGE_OFFSET", "contour_points", "mask_to_indices", "polygon_mask"]

EDGE_OFFSET = 0.5
"""Where an inference contour is drawn, in point steps beyond the chosen index: the object's edge.

The DP, like its ground truth :func:`mask_to_indices`, picks on every line the *last point
inside* the object; the edge lies between that point and the first one outside, half a point
step further out on average. A contour drawn through the chosen points themselves
(``offset=0``) therefore makes every mask too small by about half a step all round.
:func:`~diffbypass_stardp.segment_stars` draws its contours at ``indices + EDGE_OFFSET``
(``contour_points(indices, points, offset=EDGE_OFFSET)``).
"""


def _check_points(points: Tensor | np.ndarray) -> Tensor:
    check_array("points", points)
    p = torch.as_tensor(points)
    if p.ndim != 4 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (B, N, M, 2) as (x, y); got {tuple(p.shape)}")
    return p if p.is_floating_point() else p.to(torch.get_default_dtype())


def contour_points(
    indices: Tensor | np.ndarray, points: Tensor | np.ndarray, *, offset: float = 0.0
) -> Tensor:
    r"""The contour polygon: on every line, the point at (possibly fractional) index :math:`v_n`.

    Integer indices pick star points; a fractional index :math:`v = i + t` interpolates
    linearly between points :math:`i` and :math:`i + 1` of its line (differentiable with
    respect to ``indices`` and ``points``). With ``offset`` :math:`o`, the point at
    :math:`\min(v_n + o, M - 1)` is taken instead (in the points' dtype): ``offset=``
    :data:`~diffbypass_stardp.EDGE_OFFSET` draws the object's edge beyond the last inside
    points that the DP and :func:`mask_to_indices` give.

    Args:
        indices: :math:`(B, N)` indices in :math:`[0, M - 1]`, integer or float.
        points: star points :math:`(B, N, M, 2)` from :func:`~diffbypass_stardp.star_points`.
        offset: point steps added to every index, a number in :math:`[0, 1]`; the sum is
            clamped to :math:`M - 1`, the last point of the line (0: the points at the indices
            themselves).

    Returns:
        Polygon vertices :math:`(B, N, 2)` as ``(x, y)``, one per line, in line order.

    Example:
        >>> import torch
        >>> from diffbypass_stardp import star_points
        >>> p = star_points(torch.tensor([[0.0, 0.0]]), n_lines=4, n_points=4, radius=4.0)
        >>> contour_points(torch.tensor([[0.0, 1.5, 3.0, 0.0]]), p).round(decimals=3) + 0.0
        tensor([[[ 1.0000,  0.0000],
                 [ 0.0000,  2.5000],
                 [-4.0000,  0.0000],
                 [ 0.0000, -1.0000]]])
        >>> v = torch.tensor([[0.0, 1.5, 3.0, 0.0]])    # half a step out, at most point M - 1
        >>> contour_points(v, p, offset=0.5).norm(dim=-1).round(decimals=3)
        tensor([[1.5000, 3.0000, 4.0000, 1.5000]])
    """
    offset = check_offset(offset)
    p = _check_points(points)
    check_array("indices", indices)
    v = torch.as_tensor(indices, device=p.device)
    b, n, m, _ = p.shape
    if v.shape != (b, n):
        raise ValueError(f"indices must have shape (B, N) = ({b}, {n}); got {tuple(v.shape)}")
    if v.dtype == torch.bool or v.dtype.is_complex:
        raise ValueError(f"indices must be integer or float; got dtype {v.dtype}")
    if bool((v < 0).any()) or bool((v > m - 1).any()):
        raise ValueError(
            f"indices must lie in [0, M - 1] = [0, {m - 1}]; got values in "
            f"[{float(v.min()):g}, {float(v.max()):g}]"
        )
    if offset != 0.0:  # the same float arithmetic as segment_stars' compiled path
        v = (v.to(p.dtype) + offset).clamp(max=m - 1)
    if not v.is_floating_point():
        idx = v.long()[:, :, None, None].expand(b, n, 1, 2)
        return torch.gather(p, 2, idx)[:, :, 0]
    v = v.to(p.dtype)
    lo = torch.floor(v.detach()).long().clamp(max=m - 2)
    t = (v - lo.to(p.dtype))[..., None]
    p0 = torch.gather(p, 2, lo[:, :, None, None].expand(b, n, 1, 2))[:, :, 0]
    p1 = torch.gather(p, 2, (lo + 1)[:, :, None, None].expand(b, n, 1, 2))[:, :, 0]
    return p0 + t * (p1 - p0)


def polygon_mask(polygons: Tensor | np.ndarray, shape: tuple[int, int]) -> Tensor:
    r"""Fill closed polygons: a pixel is in the mask if its centre is inside (even-odd rule).

    Pixel ``(row y, column x)`` is tested at the point ``(x, y)``. Vectorised over the batch and
    the pixels, one pass per edge. Pixel centres exactly on an edge may go either way, so the
    result agrees with ``skimage.draw.polygon`` up to boundary pixels.

    Args:
        polygons: vertices :math:`(B, N, 2)` as ``(x, y)``, e.g. from :func:`contour_points`;
            the last vertex connects back to the first.
        shape: mask size ``(H, W)``.

    Returns:
        Boolean masks :math:`(B, H, W)` on ``polygons``' device.

    Example:
        >>> import torch
        >>> square = torch.tensor([[[0.5, 0.5], [3.5, 0.5], [3.5, 2.5], [0.5, 2.5]]])
        >>> polygon_mask(square, (4, 5)).int()
        tensor([[[0, 0, 0, 0, 0],
                 [0, 1, 1, 1, 0],
                 [0, 1, 1, 1, 0],
                 [0, 0, 0, 0, 0]]], dtype=torch.int32)
    """
    check_array("polygons", polygons)
    poly = torch.as_tensor(polygons)
    if poly.ndim != 3 or poly.shape[-1] != 2 or poly.shape[1] < 3:
        raise ValueError(
            f"polygons must have shape (B, N, 2) with N >= 3 vertices; got {tuple(poly.shape)}"
        )
    h, w = check_mask_shape(shape)
    poly = poly.detach().to(torch.float64)
    ys = torch.arange(h, dtype=poly.dtype, device=poly.device)[None, :, None]  # (1, H, 1)
    xs = torch.arange(w, dtype=poly.dtype, device=poly.device)[None, None, :]  # (1, 1, W)
    inside = torch.zeros((poly.shape[0], h, w), dtype=torch.bool, device=poly.device)
    x1, y1 = poly[..., 0], poly[..., 1]
    x2, y2 = torch.roll(x1, -1, dims=1), torch.roll(y1, -1, dims=1)
    for k in range(poly.shape[1]):
        a_x, a_y = x1[:, k, None, None], y1[:, k, None, None]
        b_x, b_y = x2[:, k, None, None], y2[:, k, None, None]
        crosses = (a_y > ys) != (b_y > ys)  # (B, H, 1): the edge spans this row
        dy = torch.where(b_y == a_y, torch.ones_like(b_y), b_y - a_y)
        x_cross = a_x + (ys - a_y) * (b_x - a_x) / dy  # (B, H, 1)
        inside ^= crosses & (xs < x_cross)
    return inside


def mask_to_indices(masks: Tensor | np.ndarray, points: Tensor | np.ndarray) -> Tensor:
    r"""Ground-truth indices: on each line, the last point inside the object before it leaves.

    The mask is read at the star points with nearest-pixel sampling; points outside the image
    count as background. For line :math:`n` the result is :math:`f_n - 1`, where :math:`f_n` is
    the first point outside the object, or :math:`M - 1` if the line never leaves it. A line
    whose first point is already outside (an object smaller than one point step) gets 0. This
    is the index convention of :func:`~diffbypass_stardp.radial_difference`: DP on a perfect
    object-probability map returns these indices.

    The star centre, recovered as the mean of the first points of all lines (exact for
    :func:`~diffbypass_stardp.star_points`), must lie inside the image and its nearest pixel
    inside the object: a star centred outside the object does not describe it, and this is
    reported as an error instead of returning meaningless indices.

    Args:
        masks: object masks :math:`(B, H, W)` or :math:`(B, 1, H, W)`, bool or 0/1 numbers
            (nonzero = object).
        points: star points :math:`(B, N, M, 2)`.

    Returns:
        Indices :math:`(B, N)`, int64, on ``points``' device.

    Raises:
        ValueError: bad shapes, or a centre outside the image or outside the object.

    Example:
        >>> import torch
        >>> from diffbypass_stardp import star_points
        >>> yy, xx = torch.meshgrid(torch.arange(21), torch.arange(21), indexing="ij")
        >>> disc = ((xx - 10) ** 2 + (yy - 10) ** 2 <= 36)[None]        # radius 6
        >>> p = star_points(torch.tensor([[10.0, 10.0]]), n_lines=8, n_points=10, radius=10.0)
        >>> mask_to_indices(disc, p)                                    # point 5 is at 6 px
        tensor([[5, 5, 5, 5, 5, 5, 5, 5]])
    """
    p = _check_points(points)
    check_array("masks", masks)
    mk = torch.as_tensor(masks, device=p.device)
    if mk.ndim == 4 and mk.shape[1] == 1:
        mk = mk[:, 0]
    if mk.ndim != 3:
        raise ValueError(f"masks must have shape (B, H, W) or (B, 1, H, W); got {tuple(mk.shape)}")
    if mk.shape[0] != p.shape[0]:
        raise ValueError(
            f"masks must have the batch size of points ({p.shape[0]}); got {mk.shape[0]}"
        )
    obj = (mk != 0).to(p.dtype)
    h, w = obj.shape[1:]
    centre = p[:, :, 0].mean(dim=1)  # (B, 2)
    inside_image = (centre[:, 0] >= 0) & (centre[:, 0] <= w - 1)
    inside_image &= (centre[:, 1] >= 0) & (centre[:, 1] <= h - 1)
    if not bool(inside_image.all()):
        b = int(torch.nonzero(~inside_image)[0, 0])
        raise ValueError(
            f"the star centre must lie inside the image (0 <= x <= {w - 1}, 0 <= y <= {h - 1}); "
            f"got centre {b} at (x={float(centre[b, 0]):g}, y={float(centre[b, 1]):g})"
        )
    at_centre = warp(obj, centre[:, None, None, :], mode="nearest")[:, 0, 0]
    if not bool((at_centre > 0).all()):
        b = int(torch.nonzero(at_centre <= 0)[0, 0])
        raise ValueError(
            f"the star centre must lie inside the object; got centre {b} at "
            f"(x={float(centre[b, 0]):g}, y={float(centre[b, 1]):g}) on a background pixel of masks"
        )
    inside = warp(obj, p, mode="nearest", padding="zeros") > 0  # (B, N, M)
    m = inside.shape[-1]
    leaves = ~inside
    first_out = torch.where(leaves.any(dim=-1), leaves.int().argmax(dim=-1), torch.full_like(
        leaves[..., 0], m, dtype=torch.long))
    return (first_out.long() - 1).clamp(min=0)
