"""Telemetry of surrogate fits, read by training loops and loggers through hooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor

__all__ = ["FitStats", "agreement"]


@dataclass(frozen=True)
class FitStats:
    """What one surrogate fit did.

    Attributes:
        loss_first: fit loss at the first step (on the fresh samples, before any update).
        loss_last: fit loss at the last step.
        agreement_before: agreement with ``fn`` on the freshly sampled inputs *before* the fit —
            an honest held-out figure, since the surrogate has not seen these samples yet.
        agreement_after: the same agreement after the fit.
        metric: ``"accuracy"`` (index outputs) or ``"r2"`` (real outputs).
        samples: number of perturbed inputs evaluated (``S * B``, less any dropped).
        dropped: perturbed samples left out because ``fn`` returned NaN/inf.
        steps: optimiser steps taken.
    """

    loss_first: float
    loss_last: float
    agreement_before: float
    agreement_after: float
    metric: str
    samples: int
    dropped: int
    steps: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FitHook = Callable[[Any, FitStats], None]


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
