r"""Inference for every method: segment images with the star centred at given points.

A pixel-trained method without the DP (``unet``) thresholds the U-Net's foreground probability at
0.5; a pixel-trained method with the DP (``unet-dp``, the thesis' "U-Net+DP") runs the star DP on
that probability map minus 1/2; the end-to-end methods (``edpcnn``, ``edpcnn-es``) run the star
DP on the raw output map. The DP gives smoothed fractional indices (``StarDP(output="float")``):
on each line, like the training targets (``mask_to_indices``), the last point inside the LV.
The LV's edge lies between that point and the first one outside, so the contour is drawn
``StarConfig.edge_offset`` point steps beyond the indices (``contour_points(...,
offset=edge_offset)``; by default half a step, the plugin's ``EDGE_OFFSET``): a contour through
the chosen points themselves (``edge_offset=0``, ``lvseg evaluate --edge-offset 0``) would make
every mask too small by about half a step all round. The contour is filled into a mask with
``star_mask`` (it is star-shaped around the star centre: the same mask as ``polygon_mask``,
faster; the figures are in ``docs/lv_example.md``). With the nearest-pixel warp and no pooling,
``segment_stars`` computes the same in a few compiled passes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from diffbypass_stardp import contour_points, segment_stars, star_mask, warp
from lvseg.methods import Method, get_method
from lvseg.star import StarConfig

__all__ = ["Segmentation", "segment", "segment_maps", "unet_maps"]


class Segmentation(NamedTuple):
    """Predictions of :func:`segment` for a batch (CPU tensors).

    ``points``, ``warped``, ``indices`` and ``contours`` are ``None`` for ``unet``.
    """

    masks: Tensor
    """Predicted masks :math:`(B, H, W)` bool."""
    output_map: Tensor
    """The map the prediction was read from :math:`(B, H, W)`: the foreground probability
    (``unet``, ``unet-dp``) or the raw output map (``edpcnn*``)."""
    points: Tensor | None
    """Star points :math:`(B, N, M, 2)`."""
    warped: Tensor | None
    """The warped map the DP solved :math:`(B, N, M)` (``unet-dp``: probability minus 1/2)."""
    indices: Tensor | None
    """Smoothed fractional DP indices :math:`(B, N)` (the last points inside)."""
    contours: Tensor | None
    """DP contour polygons :math:`(B, N, 2)` in pixels :math:`(x, y)`, at the indices plus
    ``star.edge_offset``."""


@torch.no_grad()
def unet_maps(unet: nn.Module, images: Tensor, *, batch_size: int = 16) -> Tensor:
    """The U-Net's raw output maps :math:`(B, 1, H, W)` of ``images`` :math:`(B, 1, H, W)`, in
    batches of ``batch_size``, on the U-Net's device (``unet`` is put in eval mode)."""
    unet.eval()
    weight = next(unet.parameters(), None)  # a parameter-free map (tests) stays where it is
    if weight is not None:
        images = images.to(weight.device)
    return torch.cat([unet(images[i : i + batch_size])
                      for i in range(0, len(images), batch_size)])  # fmt: skip


@torch.no_grad()
def segment(
    method: str | Method,
    unet: nn.Module,
    images: Tensor,
    centers: Tensor,
    star: StarConfig,
    *,
    batch_size: int = 16,
) -> Segmentation:
    """Segment ``images`` :math:`(B, 1, H, W)` with the star centred at ``centers`` :math:`(B, 2)`.

    ``unet`` is put in eval mode (and left there). ``method`` is a :class:`~lvseg.methods.Method`
    or its name; the module docstring says what each kind of method does. The U-Net and the warp
    run on the U-Net's device, the DP on the CPU; the results are CPU tensors.
    """
    return segment_maps(method, unet_maps(unet, images, batch_size=batch_size), centers, star)


@torch.no_grad()
def segment_maps(method: str | Method, maps: Tensor, centers: Tensor, star: StarConfig
                 ) -> Segmentation:
    """:func:`segment` from the U-Net's raw output ``maps`` :math:`(B, 1, H, W)`
    (:func:`unet_maps`), e.g. maps kept from an earlier call for crops that did not move."""
    if isinstance(method, str):
        method = get_method(method)
    centers = centers.to(maps.device)
    if not method.end_to_end:  # trained on pixels: read the foreground probability
        maps = torch.sigmoid(maps)
    if not method.dp:
        return Segmentation((maps[:, 0] > 0.5).cpu(), maps[:, 0].cpu(), None, None, None, None)
    # pixel-trained + DP (unet-dp): the probability minus 1/2, so that the background is
    # negative like the point beyond the star, which radial_difference takes as 0 (else a soft
    # background there would look like an edge and pull the contour to the end of every line)
    dp_input = maps if method.end_to_end else maps - 0.5
    if star.interpolation == "nearest" and star.pool == 1:  # the same numbers, compiled
        out = segment_stars(dp_input, centers, star.dp("float"), n_lines=star.n_lines,
                            n_points=star.n_points, radius=star.radius,
                            offset=star.edge_offset)  # fmt: skip
        return Segmentation(out.masks, maps[:, 0].cpu(), out.points, out.warped, out.indices,
                            out.contours)  # fmt: skip
    points = star.points(centers)
    warped = warp(dp_input, points, mode=star.interpolation)
    indices = star.dp("float")(star.reduce(warped))
    contours = contour_points(indices, points, offset=star.edge_offset)
    masks = star_mask(contours, centers, tuple(maps.shape[-2:]))
    return Segmentation(*(t.cpu() for t in (masks, maps[:, 0], points, warped, indices, contours)))
