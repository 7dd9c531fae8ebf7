"""Telemetry of estimator updates (surrogate fits, ES estimates), read by loggers through hooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from diffbypass.hooks import Hook, Hooks

__all__ = ["ESStats", "FitStats", "Telemetry", "agreement"]


@dataclass(frozen=True)
class FitStats:
    """What one surrogate fit did.

    Attributes:
        loss_first: fit loss at the first step (on the fresh samples, before any update).
        loss_last: fit loss at the last step.
        agreement_before: agreement with ``fn`` on the freshly sampled inputs *before* the fit —
            an honest held-out figure, since the surrogate has not seen these samples yet.
        agreement_after: the same agreement after the fit (one more forward pass of the
            model); ``None`` when the surrogate was built with ``report_after=False``.
        metric: ``"accuracy"`` (index outputs) or ``"r2"`` (real outputs).
        samples: number of perturbed inputs evaluated (``S * B``, less any dropped).
        dropped: perturbed samples left out because ``fn`` returned NaN/inf.
        steps: optimiser steps taken.
        skipped: optimiser steps skipped because the loss or a gradient was NaN/inf (only with
            ``Surrogate(nonfinite_fit="skip")``; the default raises instead).
    """

    loss_first: float
    loss_last: float
    agreement_before: float
    agreement_after: float | None
    metric: str
    samples: int
    dropped: int
    steps: int
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ESStats:
    """What one ES gradient estimate used.

    Attributes:
        samples: perturbed samples that entered the estimate (``S * B``, less any dropped).
        dropped: perturbed samples left out because ``fn`` returned NaN/inf
            (``Bypass(nonfinite="drop")``).
        value_std: standard deviation of the weights :math:`\\langle v, f(x+\\sigma\\varepsilon_s)
            \\rangle - b` over the samples used (before any rank shaping): the spread that sets the
            estimate's variance.
    """

    samples: int
    dropped: int
    value_std: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


S = TypeVar("S")
FitHook = Hook  # the name Surrogate's documentation has always used


class Telemetry(Generic[S]):
    """Mixin: ``stats`` of the last update and hooks called with it (see :class:`~diffbypass.base.Reporter`)."""

    stats: S | None

    def _init_telemetry(self) -> None:
        self.stats = None
        self._fit_hooks = Hooks()

    def register_fit_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(estimator, stats)`` after every update (for loggers and progress bars)."""
        return self._fit_hooks.add(hook)

    def _publish(self, stats: S) -> S:
        self.stats = stats
        self._fit_hooks(self, stats)
        return stats


@torch.no_grad()
def agreement(prediction: Tensor, target: Tensor, metric: str) -> float:
    """Accuracy of ``argmax(prediction, -1)`` against integer ``target``, or R² for reals.

    R² is ``1 - SS_res / SS_tot`` with each output coordinate centred on its own mean over the
    samples, so a surrogate that only learns per-output offsets scores about 0, not close to 1.
    """
    if metric == "accuracy":
        return float((prediction.argmax(dim=-1) == target).double().mean())
    pred = prediction.reshape(prediction.shape[0], -1).double()
    true = target.reshape(target.shape[0], -1).double()
    residual = ((pred - true) ** 2).sum()
    total = ((true - true.mean(dim=0)) ** 2).sum()
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)
