"""The methods of the example, looked up by name in one table (:data:`METHODS`).

A :class:`Method` says everything the trainer, the evaluation and the command need to know about
a method: how its gradient through the DP is estimated (none for the pixel-trained U-Net), what
the DP inside the bypass returns, the loss of one training step, what the trainer logs from the
estimator, whether its prediction goes through the star DP, and its defaults (the name, help and
defaults are :mod:`lvseg.train_choices`', which the command line reads). Nothing else in the
example branches on a method's name or probes the kind of its estimator.

Example:
    >>> [m.name for m in METHODS.values() if m.dp]
    ['unet-dp', 'edpcnn', 'edpcnn-es', 'edpcnn-softdp']
    >>> get_method("edpcnn").end_to_end, get_method("unet-dp").end_to_end
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffbypass import ES, Estimator, Relative, Surrogate
from diffbypass.validation import one_of
from lvseg.edpcnn import EDPCNN, SURROGATES
from lvseg.models import UNet
from lvseg.star import StarConfig
from lvseg.star_dp import STARDP
from lvseg.teacher import check_semi
from lvseg.train_choices import METHOD_DEFAULTS, MethodDefaults

if TYPE_CHECKING:  # the builders read a TrainConfig's fields; lvseg.config sits above this module
    from lvseg.config import TrainConfig
    from lvseg.teacher import Unlabelled  # (check_semi is imported at run time)

__all__ = ["METHODS", "SMOOTHNESS_SIGMA", "Method", "build_model", "get_method", "param_groups",
           "pixel_loss", "star_of", "unet_of"]

#: ``loss(model, images, masks, centers, angles)`` of one training step.
StepLoss = Callable[[nn.Module, Tensor, Tensor, "Tensor | None", "Tensor | None"], Tensor]
#: ``semi_loss(model, images, masks, centers, angles, unlabelled)``: a step with unlabelled images.
SemiLoss = Callable[[nn.Module, Tensor, Tensor, "Tensor | None", "Tensor | None", "Unlabelled"],
                    Tensor]


@dataclass(frozen=True, kw_only=True)
class Method(MethodDefaults):
    """One method of the example: its name, help and defaults (the fields of
    :class:`~lvseg.train_choices.MethodDefaults`), and how it is trained.

    Attributes:
        estimator: builds the gradient estimator of the bypass from the config and a noise
            generator; ``None``: the U-Net is trained on pixels, without the DP (it must be given
            exactly when :attr:`~lvseg.train_choices.MethodDefaults.estimated`).
        dp_output: what the DP inside the bypass returns (:data:`lvseg.edpcnn.DP_OUTPUTS`;
            ``None`` without an estimator).
        loss: the loss of one training step (:data:`StepLoss`).
        report: the fields the trainer logs from the estimator's fit statistics after each step
            (``None``: none; :meth:`~diffbypass.Surrogate.register_fit_hook`).
        semi_loss: the loss of a step with unlabelled images and their teacher's output
            (``--unlabelled``, :mod:`lvseg.teacher`); ``None``: the method has none.

    Raises:
        ValueError: if ``estimator`` is given for a method that is not ``estimated``, or missing
            for one that is.
    """

    estimator: Callable[[TrainConfig, torch.Generator], Estimator] | None
    dp_output: str | None
    loss: StepLoss
    report: Callable[[Any], dict[str, float]] | None = None
    semi_loss: SemiLoss | None = None

    def __post_init__(self) -> None:
        if (self.estimator is not None) != self.estimated:
            raise ValueError(f"method {self.name!r}: estimator must be given exactly when the "
                             f"method is estimated (estimated={self.estimated})")


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


def _pixel_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                angles: Tensor | None) -> Tensor:
    return pixel_loss(model(images), masks)


def _surrogate_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                    angles: Tensor | None) -> Tensor:
    """Cross-entropy of the surrogate's prediction against the true indices (Algorithm 3)."""
    out = model(images, centers, angles)
    truth = model.true_indices(masks, out.points)
    logits = model.bypass.predict(*model.dp_inputs(out.warped))  # (B, N, M): gradients to the
    # U-Net (and to a learned smoothness penalty), not into the surrogate
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), truth.reshape(-1))


def _pixel_semi(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                angles: Tensor | None, u: Unlabelled) -> Tensor:
    """:func:`pixel_loss` plus the mean-teacher consistency: the mean squared error of the
    student's foreground probabilities against the teacher's (one forward pass for both)."""
    logits = model(torch.cat([images, u.images]))
    probs = torch.sigmoid(logits[len(images):])
    return pixel_loss(logits[: len(images)], masks) + u.weight * F.mse_loss(
        probs, torch.sigmoid(u.maps))


def _surrogate_semi(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                    angles: Tensor | None, u: Unlabelled) -> Tensor:
    """:func:`_surrogate_step` on the labelled and unlabelled images in one bypass call (the
    surrogate is fitted on both), the teacher's DP indices as the unlabelled targets."""
    n = len(images)
    out = model(torch.cat([images, u.images]), torch.cat([centers, u.centers]),
                torch.cat([angles, u.angles]))
    pseudo, keep = u.pseudo_labels(out.points[n:])
    targets = torch.cat([model.true_indices(masks, out.points[:n]), pseudo])
    logits = model.bypass.predict(*model.dp_inputs(out.warped))
    lines = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    labelled = targets[:n].numel()
    return lines[:labelled].mean() + u.weight * (lines[labelled:] * keep.flatten()).mean()


def _es_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
             angles: Tensor | None) -> Tensor:
    """Mean squared error of the smoothed DP indices against the true indices."""
    out = model(images, centers, angles)
    truth = model.true_indices(masks, out.points)
    return F.mse_loss(out.indices, truth.to(out.indices.dtype))


def _softdp_step(model: nn.Module, images: Tensor, masks: Tensor, centers: Tensor | None,
                 angles: Tensor | None) -> Tensor:
    """Cross-entropy of the relaxed DP's marginals against the true indices: ``edpcnn``'s loss
    with the DP's own distribution of each :math:`v_n` in place of the surrogate's. A marginal
    that underflows is floored at the dtype's smallest normal number (no gradient there)."""
    out = model(images, centers, angles)
    truth = model.true_indices(masks, out.points)
    log_p = out.marginals.clamp_min(torch.finfo(out.marginals.dtype).tiny).log()
    return F.nll_loss(log_p.reshape(-1, log_p.shape[-1]), truth.reshape(-1))


def _surrogate(config: TrainConfig, generator: torch.Generator) -> Estimator:
    """``StarSurrogate`` (or another of :data:`~lvseg.edpcnn.SURROGATES`) fitted with the
    plugin's cross-entropy. It does not measure ``agreement_after`` (``report_after=False``: the
    trainer logs ``agreement_before`` only) and runs on one thread (``threads=1``) whatever
    torch's setting (``docs/lv_example.md``, 'Speed', says why)."""
    if config.star.pool > 1:
        raise ValueError(
            f"star.pool > 1 (ES-lo) is for the ES estimator: the surrogate predicts the DP's "
            f"indices from the full warped map; got pool={config.star.pool} with --method "
            f"{config.method}"
        )
    build = SURROGATES[one_of("surrogate", config.surrogate, tuple(SURROGATES))]
    return Surrogate(
        build(config.surrogate_channels, config.learn_smoothness), sigma=_sigma(config),
        samples=config.samples,
        fit_steps=config.fit_steps, fit_loss=STARDP.fit_loss, lr=config.surrogate_lr,
        generator=generator, report_after=False, threads=1,
    )  # fmt: skip


def _es(config: TrainConfig, generator: torch.Generator) -> Estimator:
    return ES(sigma=_sigma(config), samples=config.samples, generator=generator)


#: The estimators' noise on a learned smoothness penalty :math:`\lambda`: relative, so that the
#: perturbed :math:`\lambda (1 + 0.1\,\varepsilon)` stays positive (it would need
#: :math:`\varepsilon < -10`) and scales with :math:`\lambda`.
SMOOTHNESS_SIGMA = Relative(0.1)


def _sigma(config: TrainConfig) -> Any:
    """``config.sigma`` on the warped map; with a learned smoothness penalty, one per argument
    of the DP (the map, then the penalty with :data:`SMOOTHNESS_SIGMA`)."""
    return (config.sigma, SMOOTHNESS_SIGMA) if config.learn_smoothness else config.sigma


def _fit_report(stats: Any) -> dict[str, float]:
    return {"agreement": stats.agreement_before, "fit_loss": stats.loss_last}


#: The methods by name, in the order of the thesis' comparison: each of
#: :data:`~lvseg.train_choices.METHOD_DEFAULTS` with how it is trained.
METHODS: dict[str, Method] = {name: Method(**vars(METHOD_DEFAULTS[name]), **how) for name, how in (
    ("unet", dict(estimator=None, dp_output=None, loss=_pixel_step, semi_loss=_pixel_semi)),
    ("unet-dp", dict(estimator=None, dp_output=None, loss=_pixel_step, semi_loss=_pixel_semi)),
    ("edpcnn", dict(estimator=_surrogate, dp_output="indices", loss=_surrogate_step,
                    report=_fit_report, semi_loss=_surrogate_semi)),
    ("edpcnn-es", dict(estimator=_es, dp_output="float", loss=_es_step)),
    ("edpcnn-softdp", dict(estimator=None, dp_output=None, loss=_softdp_step)),
)}  # fmt: skip


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``; a ``ValueError`` listing the methods otherwise."""
    return METHODS[one_of("method", name, tuple(METHODS))]


def build_model(config: TrainConfig) -> nn.Module:
    """The trainable model of ``config.method``: a :class:`UNet` or an :class:`EDPCNN` (with a
    bypass, or the relaxed DP at ``config.temperature``).

    Initialisation and the estimator's noise generator follow ``config.seed``. The U-Net and
    the estimator check their own arguments here (``unet_*``, ``sigma``, ``samples``, ...).
    """
    method = get_method(config.method)
    if config.learn_smoothness and not method.learns_smoothness:
        able = ", ".join(m.name for m in METHODS.values() if m.learns_smoothness)
        raise ValueError(
            f"learn_smoothness needs a method that trains through the DP ({able}); got method "
            f"{config.method!r}: drop --learn-smoothness, or fix the penalty with --smoothness"
        )
    check_semi(config, method, [m.name for m in METHODS.values() if m.semi_loss is not None])
    torch.manual_seed(config.seed)
    unet = UNet(base_channels=config.unet_channels, depth=config.unet_depth, norm=config.unet_norm)
    if not method.end_to_end:
        return unet
    estimator = None if method.estimator is None else method.estimator(
        config, torch.Generator().manual_seed(config.seed + 1))
    return EDPCNN(unet, config.star, estimator, method.dp_output,
                  learn_smoothness=config.learn_smoothness, temperature=config.temperature)


def unet_of(model: nn.Module) -> nn.Module:
    """The U-Net inside ``model`` (the model itself for the pixel-trained methods)."""
    return model.unet if isinstance(model, EDPCNN) else model


def star_of(model: nn.Module, star: StarConfig) -> StarConfig:
    """``star`` with the smoothness penalty ``model`` learned, if it learned one (what
    inference uses); ``star`` itself otherwise."""
    return star.learned(model.log_smoothness if isinstance(model, EDPCNN) else None)


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: the U-Net at ``config.lr``, and a learned smoothness
    penalty's log at ``config.smoothness_lr``."""
    groups: list[dict[str, Any]] = [{"params": list(unet_of(model).parameters())}]
    if isinstance(model, EDPCNN) and model.log_smoothness is not None:
        groups.append({"params": [model.log_smoothness], "lr": config.smoothness_lr})
    return groups
