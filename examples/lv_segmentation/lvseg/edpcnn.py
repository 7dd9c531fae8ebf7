r"""The EDPCNN model (thesis fig. 4.2): U-Net → output map → star warp → ``Bypass(StarDP, estimator)``.

Training (thesis Algorithm 3, ``edpcnn``)::

    image --U-Net--> output map --warp on star(centre, angle)--> warped map g (B, N, M)
    g --Bypass(StarDP, Surrogate(StarSurrogate))--> DP indices (B, N)      [fits the surrogate]
    loss = cross_entropy(bypass.predict(g), true indices)                  [trains the U-Net]

``edpcnn-es`` replaces the surrogate with :class:`~diffbypass.ES` around ``StarDP(output=
"float")`` and puts a mean squared error directly on the smoothed DP indices. Which estimator,
which DP output and which loss a method uses is decided by the method table alone
(:data:`lvseg.methods.METHODS`); this module only assembles the model it is given. Inference for
every method is :func:`lvseg.segment.segment`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from diffbypass import Bypass, Estimator
from diffbypass.validation import one_of
from diffbypass_stardp import LineSurrogate, StarSurrogate, mask_to_indices, warp
from lvseg.star import StarConfig

__all__ = ["DP_OUTPUTS", "EDPCNN", "SURROGATES", "StarOutput"]

#: Surrogate architectures by name: ``channels -> network`` (``docs/stardp.md`` compares them).
#: ``star``: the thesis' small U-Net on the star (``StarSurrogate(base_channels)``); ``line``:
#: line-wise convolutions, circular across the lines (``LineSurrogate(channels)``), a cheaper
#: fit step (``docs/lv_example.md``, 'Speed').
SURROGATES: dict[str, Callable[[int], nn.Module]] = {
    "star": lambda channels: StarSurrogate(base_channels=channels),
    "line": lambda channels: LineSurrogate(channels=channels),
}

#: What the DP inside the bypass returns: ``"indices"`` (int64, for a surrogate fitted with
#: cross-entropy) or ``"float"`` (the smoothed fractional indices, for ES).
DP_OUTPUTS = ("indices", "float")


class StarOutput(NamedTuple):
    """What one EDPCNN forward pass computed (all batched)."""

    output_map: Tensor
    """U-Net output map :math:`(B, 1, H, W)`."""
    points: Tensor
    """Star points :math:`(B, N, M, 2)`."""
    warped: Tensor
    """Warped map :math:`g` :math:`(B, N, M)` (differentiable w.r.t. the U-Net); with
    ``star.pool > 1`` its pooled version :meth:`StarConfig.reduce` (what the bypass sees)."""
    indices: Tensor
    """DP output :math:`(B, N)`: int64 indices or smoothed float indices (``dp_output``)."""


class EDPCNN(nn.Module):
    r"""U-Net → output map → star warp → ``Bypass(StarDP, estimator)`` (thesis fig. 4.2).

    Args:
        unet: image :math:`(B, 1, H, W)` → output map :math:`(B, 1, H, W)`.
        star: star and DP settings.
        estimator: the bypass' gradient estimator (the method table builds it).
        dp_output: what the DP returns, one of :data:`DP_OUTPUTS`.

    Example:
        >>> from diffbypass import ES
        >>> from lvseg.models import UNet
        >>> net = EDPCNN(UNet(base_channels=4, depth=2), StarConfig(n_lines=8, n_points=16,
        ...              radius=12.0), ES(sigma=0.1, samples=2), dp_output="float")
        >>> images, masks = torch.randn(2, 1, 32, 32), torch.zeros(2, 32, 32, dtype=torch.bool)
        >>> masks[:, 10:22, 10:22] = True
        >>> out = net(images, torch.full((2, 2), 16.0))
        >>> out.warped.shape, out.indices.dtype
        (torch.Size([2, 8, 16]), torch.float32)
        >>> net.true_indices(masks, out.points).shape
        torch.Size([2, 8])
    """

    def __init__(self, unet: nn.Module, star: StarConfig, estimator: Estimator,
                 dp_output: str) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(star, StarConfig):
            raise TypeError(f"star must be a StarConfig; got {type(star).__name__}")
        if not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be a diffbypass Estimator (Surrogate, ES, ...); got "
                            f"{type(estimator).__name__}")
        self.unet = unet
        self.star = star
        self.bypass = Bypass(star.dp(one_of("dp_output", dp_output, DP_OUTPUTS)), estimator)

    def forward(self, images: Tensor, centers: Tensor, angles: Tensor | None = None) -> StarOutput:
        output_map = self.unet(images)
        if not bool(torch.isfinite(output_map).all()):  # diverged weights: not the DP's business
            bad = int((~torch.isfinite(output_map)).sum())
            raise FloatingPointError(
                f"the U-Net's output map has {bad} NaN/inf value(s) (its weights diverged, or "
                "the images hold NaN/inf)"
            )
        points = self.star.points(centers, angles)
        warped = self.star.reduce(warp(output_map, points, mode=self.star.interpolation))
        indices = self.bypass(warped)  # fits the surrogate (training mode), exact DP output
        return StarOutput(output_map, points, warped, indices)

    def true_indices(self, masks: Tensor, points: Tensor) -> Tensor:
        """Ground-truth indices :math:`(B, N)`: where each star line leaves the true mask."""
        return mask_to_indices(masks, points)
