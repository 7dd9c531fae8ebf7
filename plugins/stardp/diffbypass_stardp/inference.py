r"""The star pipeline at inference in few compiled passes: from output maps and centres to
contours and masks.

:func:`segment_stars` gives what composing the public functions gives,

.. code-block:: python

    points = star_points(centers.float(), n_lines=N, n_points=M, radius=R)
    warped = warp(maps, points)                    # nearest pixel, border padding
    indices = dp(warped, lam)                      # StarDP(output="float")
    contours = contour_points(indices, points, offset=offset)   # EDGE_OFFSET by default
    masks = star_mask(contours, centers, (H, W))

bit for bit (tested), for a fraction of the time on one image: each of those calls is a few
dozen small torch operations, and after a network's forward pass on a busy CPU each costs
tens of microseconds (what that adds to a small U-Net's inference is measured in
``benchmarks/lv_overhead/README.md``).

The contour is drawn at the object's edge, ``offset`` (by default
:data:`~diffbypass_stardp.EDGE_OFFSET`, half a point step) beyond the DP's indices: the DP picks
the last point inside the object on every line, so a contour through the chosen points would
make every mask too small by about half a step all round. ``offset=0`` draws it through them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from diffbypass_stardp import _mask_kernel, _segment_kernel
from diffbypass_stardp.blackbox import StarDP
from diffbypass_stardp._checks import check_offset
from diffbypass_stardp.contour import EDGE_OFFSET
from diffbypass_stardp.mask import check_star_shaped
from diffbypass_stardp.star import _offsets
from diffbypass.validation import instance_of, int_at_least, positive_number

__all__ = ["StarSegments", "segment_stars"]


class StarSegments(NamedTuple):
    """What :func:`segment_stars` computed (CPU tensors)."""

    points: Tensor
    """Star points :math:`(B, N, M, 2)` float32."""
    warped: Tensor
    """The maps at the points :math:`(B, N, M)` float32."""
    indices: Tensor
    """The DP's smoothed fractional indices :math:`(B, N)` float32 (without the offset)."""
    contours: Tensor
    """Contour polygons :math:`(B, N, 2)` float32, ``(x, y)``, at ``indices + offset``."""
    masks: Tensor
    """Filled contours :math:`(B, H, W)` bool."""


def segment_stars(
    maps: Tensor | np.ndarray,
    centers: Tensor | np.ndarray,
    dp: StarDP,
    *,
    n_lines: int = 25,
    n_points: int = 65,
    radius: float = 65.0,
    lam: float | Tensor | np.ndarray | None = None,
    offset: float = EDGE_OFFSET,
) -> StarSegments:
    r"""Contours and masks of ``maps`` around ``centers``, as the composition in the module
    docstring computes them.

    Args:
        maps: :math:`(B, 1, H, W)` or :math:`(B, H, W)` float maps (read in float32).
        centers: star centres :math:`(B, 2)` as ``(x, y)``.
        dp: a :class:`~diffbypass_stardp.StarDP` with ``output="float"`` and the
            ``"radial_difference"`` cost.
        n_lines, n_points, radius: the star, as for :func:`~diffbypass_stardp.star_points`.
        lam: the DP's smoothness weight, a number or :math:`()`/:math:`(B,)` tensor
            (``None``: ``dp.lam``), as for :class:`~diffbypass_stardp.StarDP`.
        offset: where the contour is drawn, in point steps beyond the DP's indices, a number
            in :math:`[0, 1]` (clamped to the last point), as for
            :func:`~diffbypass_stardp.contour_points`: :data:`~diffbypass_stardp.EDGE_OFFSET`,
            the object's edge; 0, through the chosen points.

    Returns:
        :class:`StarSegments` (CPU tensors; no gradients).

    Example:
        >>> import torch
        >>> from diffbypass_stardp import StarDP
        >>> yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        >>> disc = (((xx - 30) ** 2 + (yy - 33) ** 2) < 15**2).float()[None]   # radius 15
        >>> out = segment_stars(disc, torch.tensor([[30.0, 33.0]]), StarDP(output="float"),
        ...                     radius=30.0, n_points=30)
        >>> inside = disc[0] > 0
        >>> dice = 2 * (out.masks[0] & inside).sum() / (out.masks[0].sum() + inside.sum())
        >>> out.masks.shape, round(float(dice), 2)
        (torch.Size([1, 64, 64]), 0.98)
    """
    dp = instance_of("dp", dp, StarDP)
    if dp.output != "float" or dp.cost != "radial_difference":
        raise ValueError(
            "dp must be StarDP(output='float', cost='radial_difference'); got " + repr(dp)
        )
    n_lines = int_at_least("n_lines", n_lines, 3)
    n_points = int_at_least("n_points", n_points, 2)
    radius = positive_number("radius", radius)
    offset = check_offset(offset)
    m = np.ascontiguousarray(_numpy(maps), dtype=np.float32)
    if m.ndim == 4 and m.shape[1] == 1:
        m = m[:, 0]
    if m.ndim != 3:
        raise ValueError(f"maps must have shape (B, 1, H, W) or (B, H, W); got {m.shape}")
    c64 = np.ascontiguousarray(_numpy(centers), dtype=np.float64)  # star_mask's centres
    if c64.shape != (m.shape[0], 2):
        raise ValueError(f"centers must have shape (B, 2) = ({m.shape[0]}, 2); got {c64.shape}")
    if not np.isfinite(c64).all():
        raise ValueError("centers must be finite; got NaN or inf")
    c = c64.astype(np.float32)  # the points' (star_points in float32)
    b, h, w = m.shape
    offsets = _offsets(n_lines, n_points, radius, 0.0, torch.float32, torch.device("cpu"))
    points = np.empty((b, n_lines, n_points, 2), dtype=np.float32)
    warped = np.empty((b, n_lines, n_points), dtype=np.float32)
    _segment_kernel.warp_nearest(m, c, offsets.numpy(), points, warped)
    indices = dp(warped, lam)
    contours = np.empty((b, n_lines, 2), dtype=np.float32)
    shifted = indices  # contour_points' arithmetic: float32 sum, clamped to the last point
    if offset != 0.0:
        shifted = np.minimum(indices + np.float32(offset), np.float32(n_points - 1))
    _segment_kernel.contour(np.ascontiguousarray(shifted, dtype=np.float32), points, contours)
    masks = np.zeros((b, h, w), dtype=np.bool_)
    bad = np.zeros(b, dtype=np.bool_)
    _mask_kernel.fill_stars(contours.astype(np.float64), c64, masks, bad)
    check_star_shaped(bad)
    return StarSegments(*(torch.from_numpy(a) for a in (points, warped, indices, contours, masks)))


def _numpy(value: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"expected a torch.Tensor or numpy.ndarray; got {type(value).__name__}")
