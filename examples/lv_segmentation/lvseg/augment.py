r"""Data augmentation of a training batch, the same for every method (``lvseg train --augment``).

Per image, drawn from the trainer's NumPy generator (so a run is reproducible and resumes
exactly: the generator's state is in ``last.pt``), in this order:

1. flips :math:`F`: left-right and up-down, each with probability ``flip``;
2. one affine about the crop centre :math:`c_0` with the flips: rotation by
   :math:`\theta \sim U(-r, r)` and isotropic scaling by :math:`s \sim U(1 - z, 1 + z)`, an
   output pixel :math:`q` reading the input at :math:`p = c_0 + F R(-\theta)(q - c_0)/s` (the
   grid of ``affine_grid``; ``grid_sample``, bilinear for the image, nearest for the mask;
   outside the crop the image reads its lowest intensity, as the preprocessing pads, and the
   mask reads background); flips alone are exact (``torch.flip``);
3. optionally an elastic displacement: a random :math:`k \times k` grid of offsets, s.d.
   ``elastic`` pixels, upsampled bicubically and added to where each pixel reads;
4. gamma on the image's own range, :math:`\gamma = e^{u}`, :math:`u \sim U(-g, g)`, then
   contrast and brightness :math:`x \mapsto a x + b` (about the normalised mean 0),
   :math:`a \sim U(1 - c, 1 + c)`, :math:`b \sim U(-\beta, \beta)`.

The LV centre :math:`(x, y)` follows the image: mapped by the affine
(:math:`q = c_0 + s R(\theta) F (p - c_0)`, and through the elastic offsets by a few fixed-point
steps), so it stays the centre of the transformed LV; the object radius is scaled by :math:`s`.
Several points per image (``centers`` :math:`(B, P, 2)`: the true centre and a locator's,
:mod:`lvseg.train_centres`) are each mapped the same way.
The star's own centre jitter and rotation (:mod:`lvseg.jitter`) come after, unchanged.
``none`` (every setting 0) returns the batch itself and draws nothing.

Example:
    >>> import numpy as np, torch
    >>> images, masks = torch.zeros(2, 1, 32, 32), torch.zeros(2, 32, 32, dtype=torch.bool)
    >>> out = augment_batch(images, masks, torch.full((2, 2), 15.5), torch.ones(2),
    ...                     PRESETS["standard"], np.random.default_rng(0))
    >>> out.images.shape, out.masks.dtype
    (torch.Size([2, 1, 32, 32]), torch.bool)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lvseg.train_choices import PRESETS, AugmentConfig

__all__ = ["AugmentedBatch", "augment_batch"]


class AugmentedBatch(NamedTuple):
    """A batch after :func:`augment_batch` (new tensors, or the inputs themselves when nothing
    changes; the inputs are never modified)."""

    images: Tensor  #: :math:`(B, 1, H, W)` float
    masks: Tensor  #: :math:`(B, H, W)` bool
    centers: Tensor  #: :math:`(B, 2)` LV centres :math:`(x, y)` (or :math:`(B, P, 2)` points)
    radii: Tensor  #: :math:`(B,)` object radii, float32


def augment_batch(
    images: Tensor,
    masks: Tensor,
    centers: Tensor,
    radii: Tensor,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> AugmentedBatch:
    r"""Augment a training batch at random (module docstring), on the inputs' device.

    Args:
        images: :math:`(B, 1, H, W)` normalised intensities.
        masks: :math:`(B, H, W)` bool LV masks.
        centers: :math:`(B, 2)` LV centres :math:`(x, y)` = (column, row) in pixels, the
            convention of :class:`~lvseg.data.preprocessing.PreparedData`; or :math:`(B, P, 2)`,
            :math:`P` points per image, each mapped as the image is.
        radii: :math:`(B,)` object radii in pixels.
        config: the ranges; :data:`~lvseg.train_choices.PRESETS` holds the ``--augment`` choices.
        rng: the generator every random value is drawn from (a fixed number per image).

    Returns:
        The augmented batch; with :attr:`~lvseg.train_choices.AugmentConfig.identity`, the
        inputs themselves.

    Raises:
        ValueError: if the shapes do not fit together.
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (B, 1, H, W); got {tuple(images.shape)}")
    b, _, h, w = images.shape
    for name, tensor, shape in (("masks", masks, (b, h, w)), ("centers", centers, (b, 2)),
                                ("radii", radii, (b,))):
        points = name == "centers" and centers.dim() == 3 and centers.shape[0::2] == (b, 2)
        if tuple(tensor.shape) != shape and not points:
            also = f" or ({b}, P, 2)" if name == "centers" else ""
            raise ValueError(f"{name} must have shape {shape}{also} to match images "
                             f"{tuple(images.shape)}; got {tuple(tensor.shape)}")
    if config.identity:
        return AugmentedBatch(images, masks, centers, radii)
    flips = rng.random((b, 2)) < config.flip
    angles = rng.uniform(-config.rotation, config.rotation, b)
    scales = rng.uniform(1 - config.scale, 1 + config.scale, b)
    gammas = np.exp(rng.uniform(-config.gamma, config.gamma, b))
    factors = rng.uniform(1 - config.contrast, 1 + config.contrast, b)
    shifts = rng.uniform(-config.brightness, config.brightness, b)
    k = config.elastic_grid
    offsets = rng.normal(0.0, config.elastic, (b, 2, k, k)) if config.elastic > 0 else None

    radii = radii * torch.from_numpy(scales).to(radii)
    shape, centers = centers.shape, centers.reshape(b, -1, 2)  # (B, P, 2): P points per image
    if config.rotation or config.scale or offsets is not None:  # the flips in the same warp
        images, masks, centers = _warp(images, masks, centers, flips, angles, scales, offsets)
    else:
        images, masks, centers = _flip(images, masks, centers, torch.from_numpy(flips))
    centers = centers.reshape(shape)
    if config.gamma or config.contrast or config.brightness:
        images = _intensity(images, gammas, factors, shifts)
    return AugmentedBatch(images, masks, centers, radii)


def _flip(images: Tensor, masks: Tensor, centers: Tensor, flips: Tensor
          ) -> tuple[Tensor, Tensor, Tensor]:
    """Flip the chosen images left-right (``flips[:, 0]``), up-down (``flips[:, 1]``), and
    their points ``centers`` :math:`(B, P, 2)`; exact."""
    h, w = masks.shape[-2:]
    flips = flips.to(images.device)
    centers = centers.clone()
    for axis, size, column in ((-1, w, 0), (-2, h, 1)):  # left-right moves x, up-down y
        chosen = flips[:, column]
        images = torch.where(chosen[:, None, None, None], images.flip(axis), images)
        masks = torch.where(chosen[:, None, None], masks.flip(axis), masks)
        centers[..., column] = torch.where(chosen[:, None], (size - 1) - centers[..., column],
                                           centers[..., column])
    return images, masks, centers


def _warp(images: Tensor, masks: Tensor, centers: Tensor, flips: np.ndarray, angles: np.ndarray,
          scales: np.ndarray, offsets: np.ndarray | None) -> tuple[Tensor, Tensor, Tensor]:
    """Resample by flips, rotation and scaling about the crop centre (and the elastic offsets);
    the points ``centers`` :math:`(B, P, 2)` move with the image."""
    h, w = masks.shape[-2:]
    cos, sin = np.cos(angles) / scales, np.sin(angles) / scales
    rotate = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    inverse = np.where(flips, -1.0, 1.0)[:, :, None] * rotate  # q -> p = c0 + F R(-t) (q - c0) / s
    # normalised coordinates (align_corners=True): u = (x - cx) * 2 / (w - 1)
    norm = np.array([2 / max(w - 1, 1), 2 / max(h - 1, 1)])
    device = images.device
    theta = torch.from_numpy(norm[:, None] * inverse / norm[None, :]).float().to(device)
    u = torch.linspace(-1.0, 1.0, w, device=device)[None, None, :]  # as affine_grid, faster
    v = torch.linspace(-1.0, 1.0, h, device=device)[None, :, None]
    t = theta[:, :, :, None, None]  # (B, 2, 2, 1, 1)
    grid = torch.stack([t[:, 0, 0] * u + t[:, 0, 1] * v, t[:, 1, 0] * u + t[:, 1, 1] * v], -1)
    middle = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64)
    forward = torch.from_numpy(np.linalg.inv(inverse))  # p -> q
    moved = middle + torch.einsum("bij,bpj->bpi", forward, centers.double().cpu() - middle)
    if offsets is not None:
        field = F.interpolate(torch.from_numpy(offsets).float().to(device), size=(h, w),
                              mode="bicubic", align_corners=True)  # (B, 2, H, W) pixels
        scale = torch.tensor(norm, dtype=torch.float32, device=device)
        grid = grid + field.permute(0, 2, 3, 1) * scale
        target = moved.clone()
        for _ in range(4):  # q with A(q) + d(q) = p: q = A^-1(p) - M^-1 d(q)
            at = ((moved - middle) * torch.from_numpy(norm)).float().to(device)
            d = F.grid_sample(field, at[:, None], align_corners=True)[:, :, 0]  # (B, 2, P)
            moved = target - torch.einsum("bij,bjp->bpi", forward, d.double().cpu())
    low = images.amin(dim=(1, 2, 3), keepdim=True)  # pad with each image's lowest intensity
    images = F.grid_sample(images - low, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=True) + low
    masks = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                          align_corners=True)[:, 0] > 0.5
    return images, masks, moved.to(centers)


def _intensity(images: Tensor, gammas: np.ndarray, factors: np.ndarray, shifts: np.ndarray
               ) -> Tensor:
    """Gamma on each image's own range, then ``a x + b``."""
    def per_image(values: np.ndarray) -> Tensor:
        return torch.from_numpy(values).to(images)[:, None, None, None]

    low = images.amin(dim=(1, 2, 3), keepdim=True)
    span = (images.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)
    unit = ((images - low) / span).clamp(0.0, 1.0)
    images = low + span * unit.pow(per_image(gammas))
    return per_image(factors) * images + per_image(shifts)
