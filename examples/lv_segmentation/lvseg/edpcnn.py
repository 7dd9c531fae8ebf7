r"""The EDPCNN model (thesis fig. 4.2): U-Net → output map → star warp → ``Bypass(StarDP, estimator)``.

Training (thesis Algorithm 3, ``edpcnn``)::

    image --U-Net--> output map --warp on star(centre, angle)--> warped map g (B, N, M)
    g --Bypass(StarDP, Surrogate(StarSurrogate))--> DP indices (B, N)      [fits the surrogate]
    loss = cross_entropy(bypass.predict(g), true indices)                  [trains the U-Net]

``edpcnn-es`` replaces the surrogate with :class:`~diffbypass.ES` around ``StarDP(output=
"float")`` and puts a mean squared error directly on the smoothed DP indices. ``edpcnn-softdp``
has no bypass: the warped map's costs go through the relaxed DP :func:`~diffbypass_stardp.soft_dp`
at a temperature (exact autograd), and a cross-entropy is put on its marginals. Which estimator,
which DP output and which loss a method uses is decided by the method table alone
(:data:`lvseg.methods.METHODS`); this module only assembles the model it is given. Inference for
every method is :func:`lvseg.segment.segment`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from diffbypass import Bypass, Estimator
from diffbypass.validation import one_of, positive_number
from diffbypass_stardp import (LineSurrogate, StarSurrogate, mask_to_indices, radial_difference,
                               soft_dp, warp)
from lvseg.star import StarConfig

__all__ = ["DP_OUTPUTS", "EDPCNN", "INITIAL_SMOOTHNESS", "SURROGATES", "StarOutput"]

#: Surrogate architectures by name (:data:`~lvseg.train_choices.SURROGATE_NAMES`):
#: ``(channels, lam_input) -> network`` (``docs/stardp.md``
#: compares them). ``star``: the thesis' small U-Net on the star (``StarSurrogate(base_channels)``);
#: ``line``: line-wise convolutions, circular across the lines (``LineSurrogate(channels)``), a
#: cheaper fit step (``docs/lv_example.md``, 'Speed'). ``lam_input``: the network also takes the
#: DP's smoothness penalty (a learned one, ``EDPCNN(learn_smoothness=True)``). The star surrogate's
#: weights are kept channels-last: the same function up to rounding (about 1e-8), a cheaper fit
#: and VJP on a CPU (``benchmarks/lv_cli_overhead/README.md``).
SURROGATES: dict[str, Callable[[int, bool], nn.Module]] = {
    "star": lambda channels, lam_input: StarSurrogate(
        base_channels=channels, lam_input=lam_input).to(memory_format=torch.channels_last),
    "line": lambda channels, lam_input: LineSurrogate(channels=channels, lam_input=lam_input),
}

#: The initial smoothness penalty of a learned one when ``StarConfig.smoothness`` is 0 (a
#: learned penalty is :math:`\exp` of a parameter, which cannot start at 0).
#: ``benchmarks/lv_smoothness/README.md`` says how the scale was chosen.
INITIAL_SMOOTHNESS = 0.1

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
    """DP output :math:`(B, N)`: int64 indices or smoothed float indices (``dp_output``); with
    the relaxed DP its expected (unsmoothed) indices."""
    marginals: Tensor | None = None
    """The relaxed DP's marginals :math:`(B, N, M)`, :math:`p(v_n = j)` (``None`` with a
    bypass)."""


class EDPCNN(nn.Module):
    r"""U-Net → output map → star warp → ``Bypass(StarDP, estimator)`` (thesis fig. 4.2).

    Args:
        unet: image :math:`(B, 1, H, W)` → output map :math:`(B, 1, H, W)`.
        star: star and DP settings.
        estimator: the bypass' gradient estimator (the method table builds it); ``None``: no
            bypass, the U-Net is trained through the relaxed DP (``temperature``).
        dp_output: what the DP returns, one of :data:`DP_OUTPUTS` (ignored without a bypass).
        learn_smoothness: train the DP's smoothness penalty :math:`\lambda` with the U-Net:
            :math:`\lambda = \exp(\text{log\_smoothness})`, an ``nn.Parameter`` (in the
            ``state_dict``) starting at ``star.smoothness`` (:data:`INITIAL_SMOOTHNESS` if that
            is 0), passed to the bypass as its shared second argument ``lam``; the estimator
            must take it (a surrogate built with ``lam_input=True``, a ``sigma`` per argument).
            Otherwise the DP uses the fixed ``star.smoothness``.
        temperature: without an estimator, the temperature :math:`\tau > 0` of the relaxed
            DP :func:`~diffbypass_stardp.soft_dp` on the costs
            :func:`~diffbypass_stardp.radial_difference` of the warped map (the cost and
            penalty of ``StarDP``, :math:`\min` made soft; no moving average). Its gradient
            is exact, also for a learned :math:`\lambda`; inference still uses the hard DP.

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

    def __init__(self, unet: nn.Module, star: StarConfig, estimator: Estimator | None,
                 dp_output: str | None = None, *, learn_smoothness: bool = False,
                 temperature: float | None = None) -> None:  # fmt: skip
        super().__init__()
        if not isinstance(star, StarConfig):
            raise TypeError(f"star must be a StarConfig; got {type(star).__name__}")
        if estimator is not None and not isinstance(estimator, Estimator):
            raise TypeError(f"estimator must be a diffbypass Estimator (Surrogate, ES, ...) or "
                            f"None (the relaxed DP); got {type(estimator).__name__}")
        if (estimator is None) == (temperature is None):
            raise ValueError("give an estimator (the bypass) or a temperature (the relaxed DP), "
                             f"not both or neither; got estimator={estimator!r}, "
                             f"temperature={temperature!r}")
        self.unet = unet
        self.star = star
        self.log_smoothness: nn.Parameter | None = None
        if learn_smoothness:
            initial = star.smoothness or INITIAL_SMOOTHNESS
            self.log_smoothness = nn.Parameter(torch.tensor(math.log(initial)))
        self.bypass: Bypass | None = None
        self.temperature: float | None = None
        if estimator is None:
            if star.pool > 1:
                raise ValueError(f"star.pool > 1 (ES-lo) is for the ES estimator; the relaxed "
                                 f"DP solves the full warped map; got pool={star.pool}")
            self.temperature = positive_number("temperature", temperature)
            return
        dp = star.dp(one_of("dp_output", dp_output, DP_OUTPUTS))
        self.bypass = Bypass(dp, estimator, shared=("lam",) if learn_smoothness else None)

    @property
    def smoothness(self) -> Tensor | None:
        r"""The learned smoothness penalty :math:`\lambda`, a scalar tensor (differentiable);
        ``None`` when the DP uses the fixed ``star.smoothness``."""
        return None if self.log_smoothness is None else self.log_smoothness.exp()

    def dp_inputs(self, warped: Tensor) -> tuple[Tensor, ...]:
        """The bypass' arguments for ``warped``: ``(warped,)``, or ``(warped, lambda)`` with a
        learned smoothness penalty (``bypass.predict(*dp_inputs(g))`` as well)."""
        lam = self.smoothness
        return (warped,) if lam is None else (warped, lam)

    def forward(self, images: Tensor, centers: Tensor, angles: Tensor | None = None) -> StarOutput:
        output_map = self.unet(images)
        if not _all_finite(output_map):  # diverged weights: not the DP's business
            bad = int((~torch.isfinite(output_map)).sum())
            raise FloatingPointError(
                f"the U-Net's output map has {bad} NaN/inf value(s) (its weights diverged, or "
                "the images hold NaN/inf)"
            )
        points = self.star.points(centers, angles)
        warped = self.star.reduce(warp(output_map, points, mode=self.star.interpolation))
        if self.bypass is None:  # the relaxed DP, differentiable end to end
            lam = self.smoothness
            soft = soft_dp(radial_difference(warped), self.star.delta, self.temperature,
                           self.star.smoothness if lam is None else lam)  # fmt: skip
            return StarOutput(output_map, points, warped, soft.indices, soft.marginals)
        indices = self.bypass(*self.dp_inputs(warped))  # fits the surrogate (training mode), exact DP output
        return StarOutput(output_map, points, warped, indices)

    def true_indices(self, masks: Tensor, points: Tensor) -> Tensor:
        """Ground-truth indices :math:`(B, N)`: where each star line leaves the true mask."""
        return mask_to_indices(masks, points)


def _all_finite(t: Tensor) -> bool:
    """Is every value of ``t`` finite? Its extremes are NaN/inf exactly when some value is (NaN
    propagates through them): one pass over ``t``, without a mask of its size."""
    return t.numel() == 0 or bool(torch.isfinite(torch.stack(torch.aminmax(t))).all())
