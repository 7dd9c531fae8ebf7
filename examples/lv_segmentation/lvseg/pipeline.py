r"""The EDPCNN pipeline (thesis fig. 4.2): star settings, the model, its losses and centre jitter.

Training (thesis Algorithm 3, ``edpcnn``)::

    image --U-Net--> output map --warp on star(centre, angle)--> warped map g (B, N, M)
    g --Bypass(StarDP, Surrogate(StarSurrogate))--> DP indices (B, N)      [fits the surrogate]
    loss = cross_entropy(bypass.predict(g), true indices)                  [trains the U-Net]

``edpcnn-es`` replaces the surrogate with :class:`~diffbypass.ES` around ``StarDP(output=
"float")`` and puts a mean squared error directly on the smoothed DP indices.

Inference for every method is :func:`lvseg.segment.segment`; which method uses which estimator
and loss is the table :data:`lvseg.methods.METHODS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffbypass import ES, Bypass, Estimator, Surrogate, plugins
from diffbypass.validation import int_at_least, one_of
from diffbypass_stardp import LineSurrogate, StarSurrogate, mask_to_indices, star_points, warp

if TYPE_CHECKING:
    from diffbypass_stardp import StarDP

#: The star-DP plugin's record (black box, default surrogate, fit loss), through the plugin
#: contract: ``lvseg`` uses the DP as any user of a plugin would.
STARDP = plugins.load("stardp")
from lvseg.data.preprocessing import CROP_SIZE
from lvseg.options import check_fields, document, option

__all__ = [
    "INTERPOLATIONS",
    "SURROGATES",
    "EDPCNN",
    "PooledDP",
    "StarConfig",
    "StarOutput",
    "make_estimator",
    "pixel_loss",
]

#: Sampling modes of the output map on the star (``warp``'s ``mode``).
INTERPOLATIONS = ("nearest", "bilinear")

#: Surrogate architectures by name: ``channels -> network`` (``docs/stardp.md`` compares them).
#: ``star``: the thesis' small U-Net on the star (``StarSurrogate(base_channels)``); ``line``:
#: line-wise convolutions, circular across the lines (``LineSurrogate(channels)``), about half
#: the cost of a fit step.
SURROGATES: dict[str, Callable[[int], nn.Module]] = {
    "star": lambda channels: StarSurrogate(base_channels=channels),
    "line": lambda channels: LineSurrogate(channels=channels),
}


@document
@dataclass(frozen=True)
class StarConfig:
    """Star pattern and DP settings (thesis §5.4 defaults in brackets).

    Each setting is checked by its owner: ``n_lines``, ``n_points`` and ``radius`` by
    ``star_points``, ``delta`` and ``smoothing`` by ``StarDP`` (so ``delta=0``, a circle, and
    ``smoothing=0`` or ``1``, none, are accepted as ``StarDP`` accepts them); the config adds
    only what involves two settings: an odd ``smoothing`` width must not exceed ``n_lines``.
    """

    n_lines: int = option(25, "star lines N", thesis="25", metavar="N", high=360)
    n_points: int = option(65, "points per line M", thesis="65", metavar="M", high=1024)
    radius: float = option(65.0, "star radius in pixels (covers any LV after centre jitter; at "
                           "most 4 crop sides)", thesis="65", metavar="PX", high=4 * CROP_SIZE)
    delta: int = option(1, "DP smoothness delta, the largest index change between neighbouring "
                        "lines", thesis="1", metavar="D")
    smoothing: int | None = option(None, "odd width of the moving average on the DP indices "
                                   "(None: the odd integer nearest N/4; 0 or 1: none)",
                                   thesis="~N/4", metavar="W")
    interpolation: str = option("nearest", "warp interpolation of the output map",
                                thesis="nearest", choices=INTERPOLATIONS)
    pool: int = option(1, "ES-lo: the DP solves the warped map averaged over blocks of F "
                       "points along each line (ceil(M/F) values per line) and linearly "
                       "interpolated back to M points, so the estimator sees N x ceil(M/F) "
                       "values (thesis ES-lo: a U-Net without input padding, its smaller output "
                       "upsampled); 1: none; edpcnn-es only", thesis="1 (ES-lo: lower)",
                       metavar="F")

    def __post_init__(self) -> None:
        check_fields(self)  # types and bounds (the sizes: one bad value must not allocate GBs)
        self.points(torch.zeros(1, 2))  # star_points checks n_lines, n_points and radius
        self.dp()  # StarDP checks delta and smoothing
        one_of("interpolation", self.interpolation, INTERPOLATIONS)
        int_at_least("pool", self.pool, 1)
        if self.smoothing is not None and self.smoothing > self.n_lines:
            raise ValueError(
                f"smoothing must be None or an odd width <= n_lines={self.n_lines}; "
                f"got {self.smoothing}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for ``config.json``)."""
        return asdict(self)

    def points(self, centers: Tensor, angles: Tensor | None = None) -> Tensor:
        r"""Star points :math:`(B, N, M, 2)` around ``centers`` :math:`(B, 2)`, rotated by ``angles``."""
        return star_points(
            centers.to(torch.float32), n_lines=self.n_lines, n_points=self.n_points,
            radius=float(self.radius), angle=0.0 if angles is None else angles.to(torch.float32),
        )  # fmt: skip

    def dp(self, output: str = "float") -> StarDP | PooledDP:
        """The black box with these settings: the DP on the bypass input :meth:`reduce` makes."""
        dp = STARDP.blackbox(delta=self.delta, smoothing=self.smoothing, output=output)
        return dp if self.pool == 1 else PooledDP(dp, self.n_points)

    def reduce(self, warped: Tensor) -> Tensor:
        r"""What the DP's bypass sees: ``warped`` :math:`(B, N, M)` itself, or for ``pool``
        :math:`F > 1` its averages over blocks of :math:`F` points along each line,
        :math:`(B, N, \lceil M/F \rceil)` (differentiable; :meth:`dp` interpolates them back)."""
        if self.pool == 1:
            return warped
        b, n, m = warped.shape
        pooled = F.adaptive_avg_pool1d(warped.reshape(b * n, 1, m), -(-m // self.pool))
        return pooled.reshape(b, n, -1)


class PooledDP:
    """``StarDP`` on a pooled warped map (:attr:`StarConfig.pool`): linear interpolation of the
    :math:`L` values per line back to ``n_points``, then the DP (picklable, like ``StarDP``)."""

    def __init__(self, dp: StarDP, n_points: int) -> None:
        self.dp, self.n_points = dp, int(n_points)

    def __call__(self, pooled: Tensor | np.ndarray) -> Tensor | np.ndarray:
        """The DP's indices for ``pooled`` :math:`(B, N, L)`; NumPy in, NumPy out (as StarDP)."""
        if isinstance(pooled, np.ndarray):
            return self(torch.from_numpy(pooled)).numpy()
        b, n, length = pooled.shape
        full = F.interpolate(pooled.reshape(b * n, 1, length), size=self.n_points, mode="linear",
                             align_corners=True)  # fmt: skip
        return self.dp(full.reshape(b, n, self.n_points))


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
    """DP output :math:`(B, N)`: int64 indices (surrogate) or smoothed float indices (ES)."""


def make_estimator(
    kind: str,
    *,
    sigma: float = 1.0,
    samples: int = 10,
    fit_steps: int = 10,
    lr: float = 1e-3,
    base_channels: int = 8,
    architecture: str = "star",
    generator: torch.Generator | None = None,
) -> Estimator:
    """The gradient estimator of an EDPCNN variant.

    Args:
        kind: ``"surrogate"`` (thesis: ``StarSurrogate`` fitted with cross-entropy) or ``"es"``.
        sigma: exploration / smoothing noise scale (thesis: 1).
        samples: perturbed copies per input (thesis: 10).
        fit_steps: surrogate optimiser steps per forward (thesis: 10; surrogate only).
        lr: the surrogate's Adam learning rate (surrogate only).
        base_channels: the surrogate's width (thesis: 8; surrogate only).
        architecture: a name in :data:`SURROGATES` (thesis: ``"star"``; surrogate only).
        generator: noise generator (reproducible runs; its state is in the module's state dict).

    The surrogate does not measure ``FitStats.agreement_after`` (``report_after=False``): the
    trainer logs ``agreement_before`` only, and the extra forward pass would cost a third of a
    2-step fit. It runs on one thread (``threads=1``) whatever torch's setting: on 2 threads
    its share of a training iteration was 1.6 times as slow (``benchmarks/lv_overhead.py``).
    """
    if kind == "surrogate":
        build = SURROGATES[one_of("architecture", architecture, tuple(SURROGATES))]
        return Surrogate(
            build(base_channels), sigma=sigma, samples=samples, fit_steps=fit_steps,
            fit_loss=STARDP.fit_loss, lr=lr, generator=generator, report_after=False, threads=1,
        )  # fmt: skip
    if kind == "es":
        return ES(sigma=sigma, samples=samples, generator=generator)
    raise ValueError(f"kind must be 'surrogate' or 'es'; got {kind!r}")


class EDPCNN(nn.Module):
    r"""U-Net → output map → star warp → ``Bypass(StarDP, estimator)`` (thesis fig. 4.2).

    Args:
        unet: image :math:`(B, 1, H, W)` → output map :math:`(B, 1, H, W)`.
        star: star and DP settings.
        estimator: :class:`~diffbypass.Surrogate` (``fit_loss="ce"``; the black box returns
            int64 indices and the loss goes on :meth:`Bypass.predict`) or :class:`~diffbypass.ES`
            (the black box returns smoothed float indices and the loss goes on them).

    Example:
        >>> from lvseg.models import UNet
        >>> net = EDPCNN(UNet(base_channels=4, depth=2), StarConfig(n_lines=8, n_points=16,
        ...              radius=12.0), make_estimator("surrogate", samples=2, fit_steps=1))
        >>> images, masks = torch.randn(2, 1, 32, 32), torch.zeros(2, 32, 32, dtype=torch.bool)
        >>> masks[:, 10:22, 10:22] = True
        >>> out = net(images, torch.full((2, 2), 16.0))
        >>> out.warped.shape, out.indices.dtype
        (torch.Size([2, 8, 16]), torch.int64)
        >>> net.loss(out, net.true_indices(masks, out.points)).backward()
    """

    def __init__(self, unet: nn.Module, star: StarConfig, estimator: Estimator) -> None:
        super().__init__()
        if not isinstance(star, StarConfig):
            raise TypeError(f"star must be a StarConfig; got {type(star).__name__}")
        if not isinstance(estimator, (Surrogate, ES)):
            raise TypeError(f"estimator must be a Surrogate or ES; got {type(estimator).__name__}")
        self.unet = unet
        self.star = star
        self.uses_surrogate = isinstance(estimator, Surrogate)
        if self.uses_surrogate and star.pool > 1:
            raise ValueError(
                f"star.pool > 1 (ES-lo) is for the ES estimator: the surrogate predicts the "
                f"DP's indices from the full warped map; got pool={star.pool} with a Surrogate"
            )
        self.bypass = Bypass(star.dp("indices" if self.uses_surrogate else "float"), estimator)

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

    def loss(self, out: StarOutput, true_indices: Tensor) -> Tensor:
        """Cross-entropy of the surrogate's prediction (Algorithm 3) or MSE of the ES indices."""
        if self.uses_surrogate:
            logits = self.bypass.predict(out.warped)  # (B, N, M), gradients to the U-Net only
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), true_indices.reshape(-1))
        return F.mse_loss(out.indices, true_indices.to(out.indices.dtype))


def pixel_loss(logits: Tensor, masks: Tensor) -> Tensor:
    """Binary cross-entropy plus soft Dice loss of the U-Net baseline.

    Args:
        logits: :math:`(B, 1, H, W)` foreground logits.
        masks: :math:`(B, H, W)` true masks.
    """
    target = masks.to(logits.dtype).unsqueeze(1)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    soft_dice = (2 * inter + 1.0) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1.0)
    return bce + (1 - soft_dice).mean()
