r"""Segment, then score: the one function training, evaluation and the benchmarks call.

:func:`score` segments images with a method (:func:`lvseg.segment.segment`) and scores the masks
inside the star's square (thesis protocol, :mod:`lvseg.metrics`): the Dice of every image, and
with a pixel ``spacing`` also HD, HD95 and ASSD (:func:`~lvseg.metrics.evaluate_batch`). Model
selection during training needs the Dice only; ``lvseg evaluate`` and the benchmarks need all.

Example:
    >>> import torch
    >>> from lvseg.star import StarConfig
    >>> masks = torch.zeros(1, 32, 32, dtype=torch.bool); masks[0, 10:22, 10:22] = True
    >>> logits = (masks[:, None].float() - 0.5) * 20  # what a perfect U-Net would output
    >>> out = score("unet", torch.nn.Identity(), logits, masks, torch.tensor([[15.5, 15.5]]),
    ...             StarConfig(n_lines=8, n_points=16, radius=12.0))
    >>> out.dice, out.mean_dice, out.rows is None
    ([1.0], 1.0, True)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from torch import Tensor, nn

from lvseg.methods import Method
from lvseg.metrics import evaluate_batch, square_dice
from lvseg.segment import Segmentation, segment
from lvseg.star import StarConfig, at_rim

__all__ = ["Scores", "score"]


class Scores(NamedTuple):
    """What :func:`score` computed."""

    segmentation: Segmentation
    """The predictions (:func:`lvseg.segment.segment`)."""
    dice: list[float]
    """Dice of each image inside its star's square."""
    rows: list[dict[str, Any]] | None
    """With a ``spacing``: one :func:`~lvseg.metrics.evaluate_masks` dict per image (Dice, HD,
    HD95, ASSD in mm, emptiness flags); ``None`` without."""
    at_rim: int | None = None
    """How many images have their DP contour at the star's rim on most lines
    (:func:`~lvseg.star.at_rim`: the DP found no edge, the mask fills the star);
    ``None`` for a method without the DP."""

    @property
    def mean_dice(self) -> float:
        """The mean Dice over the images."""
        return float(np.mean(self.dice))


def score(
    method: str | Method,
    unet: nn.Module | Any,
    images: Tensor,
    masks: Tensor,
    centers: Tensor,
    star: StarConfig,
    *,
    spacing: float | Sequence[float] | None = None,
) -> Scores:
    r"""Segment ``images`` :math:`(B, 1, H, W)` with ``method`` around ``centers`` :math:`(B, 2)`
    and score the result against the true ``masks`` :math:`(B, H, W)` inside the star's square.

    Args:
        method: a :class:`~lvseg.methods.Method` or its name.
        unet: the U-Net (any module mapping images to an output map).
        images: the images.
        masks: the true masks.
        centers: star centres :math:`(x, y)` in pixels.
        star: the star and DP settings (its ``radius`` sets the square).
        spacing: pixel size in mm; with it, the surface distances are computed too.
    """
    seg = segment(method, unet, images, centers, star)
    rim = None
    if seg.contours is not None:
        radii = (seg.contours - centers.to(seg.contours)[:, None]).norm(dim=-1)
        rim = int(at_rim(radii.numpy(), star.radius).sum())
    if spacing is None:
        return Scores(seg, square_dice(seg.masks, masks, centers, star.radius), None, rim)
    rows = evaluate_batch(seg.masks, masks, spacing, centers, star.radius)
    return Scores(seg, [row["dice"] for row in rows], rows, rim)
