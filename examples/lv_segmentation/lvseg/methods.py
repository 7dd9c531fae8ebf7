"""The methods of the example, looked up by name in one table (:data:`METHODS`).

A :class:`Method` says everything the trainer, the evaluation and the command need to know about
a method: how its gradient through the DP is estimated (none for the pixel-trained U-Net), the
loss of one training step, whether its prediction goes through the star DP, and its default
number of iterations. Nothing else in the example branches on a method's name.

Example:
    >>> [m.name for m in METHODS.values() if m.dp]
    ['unet-dp', 'edpcnn', 'edpcnn-es']
    >>> get_method("edpcnn").end_to_end, get_method("unet-dp").end_to_end
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor, nn

from diffbypass import Estimator
from diffbypass.validation import one_of
from lvseg.models import UNet
from lvseg.pipeline import EDPCNN, make_estimator, pixel_loss

if TYPE_CHECKING:
    from lvseg.config import TrainConfig

__all__ = ["METHODS", "Method", "build_model", "get_method", "unet_of"]

#: ``loss(model, images, masks, centers, angles)`` of one training step.
StepLoss = Callable[[nn.Module, Tensor, Tensor, "Tensor | None", "Tensor | None"], Tensor]


@dataclass(frozen=True)
class Method:
    """One method of the example.

    Attributes:
        name: the ``--method`` value.
        help: one phrase for ``lvseg train --help``.
        estimator: builds the gradient estimator of the bypass from the config and a noise
            generator; ``None``: the U-Net is trained on pixels, without the DP.
        loss: the loss of one training step (:data:`StepLoss`).
        dp: whether the prediction is the star DP's contour (else the U-Net's mask).
        iterations: default training iterations: where the validation Dice of
            ``--train-size 10`` runs on the bundled Sunnybrook sample had levelled off.
        samples: default noise samples per input of the estimator (``--samples``): 1 for the
            surrogate's fit (with 1 fit step and the StarSurrogate: the ACDC validation Dice of
            the thesis' setting at a third of its cost, ``benchmarks/lv_pareto.py``), 10 for
            ES (thesis).
        sigma: default noise scale of the estimator: 1 for the surrogate (thesis); 0.1 for ES,
            where sigma = 1, about 3 times the RMS of the output map, smooths the DP so much
            that the estimated gradient drove contours to the line ends, the more so with more
            samples (``benchmarks/README.md``, acdc_ablation: the ES diagnosis).
    """

    name: str
    help: str
    estimator: Callable[[TrainConfig, torch.Generator], Estimator] | None
    loss: StepLoss
    dp: bool
    iterations: int
    samples: int = 10
    sigma: float = 1.0

    @property
    def end_to_end(self) -> bool:
        """Whether the U-Net is trained through the DP (with centre jitter and rotation)."""
        return self.estimator is not None


def _pixel_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                angles: Tensor | None) -> Tensor:
    return pixel_loss(model(images), masks)


def _star_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
               angles: Tensor | None) -> Tensor:
    out = model(images, centers, angles)
    return model.loss(out, model.true_indices(masks, out.points))


def _surrogate(config: TrainConfig, generator: torch.Generator) -> Estimator:
    return make_estimator(
        "surrogate", sigma=config.sigma, samples=config.samples, fit_steps=config.fit_steps,
        lr=config.surrogate_lr, base_channels=config.surrogate_channels,
        architecture=config.surrogate, generator=generator,
    )  # fmt: skip


def _es(config: TrainConfig, generator: torch.Generator) -> Estimator:
    return make_estimator("es", sigma=config.sigma, samples=config.samples, generator=generator)


#: The methods by name, in the order of the thesis' comparison.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("unet", "U-Net with BCE + soft Dice", None, _pixel_step, dp=False, iterations=200),
    Method("unet-dp", "the same training, star DP applied at test time", None, _pixel_step,
           dp=True, iterations=200),
    Method("edpcnn", "U-Net trained through the DP with the differentiable bypass (thesis "
           "Algorithm 3)", _surrogate, _star_step, dp=True, iterations=150, samples=1),
    Method("edpcnn-es", "the same with ES", _es, _star_step, dp=True, iterations=150, sigma=0.1),
)}  # fmt: skip


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; a ``ValueError`` listing the methods otherwise."""
    return METHODS[one_of("method", name, tuple(METHODS))]


def build_model(config: TrainConfig) -> nn.Module:
    """The trainable model of ``config.method``: a :class:`UNet` or an :class:`EDPCNN`.

    Initialisation and the estimator's noise generator follow ``config.seed``. The U-Net and
    the estimator check their own arguments here (``unet_*``, ``sigma``, ``samples``, ...).
    """
    method = get_method(config.method)
    torch.manual_seed(config.seed)
    unet = UNet(base_channels=config.unet_channels, depth=config.unet_depth, norm=config.unet_norm)
    if method.estimator is None:
        return unet
    estimator = method.estimator(config, torch.Generator().manual_seed(config.seed + 1))
    return EDPCNN(unet, config.star, estimator)


def unet_of(model: nn.Module) -> nn.Module:
    """The U-Net inside ``model`` (the model itself for the pixel-trained methods)."""
    return model.unet if isinstance(model, EDPCNN) else model
