"""The surrogate's fit loop: ``fit_steps`` optimiser steps, each skipped on a NaN/inf loss or
gradient, and the :class:`~diffbypass.stats.FitStats` they give.

One loop serves :meth:`Surrogate.fit <diffbypass.Surrogate.fit>` (one input tensor) and
``Surrogate.fit_call`` (a black box with several arguments or outputs); they differ only in how
the model is called on the samples, which they pass in as functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, TypeVar

import torch
from torch import Tensor, nn

from diffbypass import distributed
from diffbypass.estimators._threads import num_threads
from diffbypass.stats import FitStats

if TYPE_CHECKING:
    from diffbypass.estimators.surrogate import Surrogate

__all__ = ["fit_loop"]

P = TypeVar("P")


def fit_loop(
    surrogate: Surrogate,
    predict: Callable[[], P],
    loss_of: Callable[[P], Tensor],
    agreement: Callable[[P], float],
    agreement_after: Callable[[], float],
    *,
    threads: int | None,
    samples: int,
    dropped: int,
) -> FitStats:
    """Take ``surrogate.fit_steps`` optimiser steps on ``loss_of(predict())`` and publish the stats.

    Args:
        surrogate: the estimator (its model, optimiser, ``fit_steps``, ``nonfinite_fit``,
            ``report_after`` and ``fit_loss``).
        predict: the model on all fit samples (with autograd).
        loss_of: the fit loss of ``predict``'s result.
        agreement: the agreement on the fresh samples of ``predict``'s result (first step:
            :attr:`FitStats.agreement_before`).
        agreement_after: the agreement on the fresh samples after the last step (run without
            autograd, only if ``surrogate.report_after``).
        threads: torch intra-op threads for the loop (``None``: the caller's setting).
        samples: the number of fresh samples (``FitStats.samples``).
        dropped: the number of NaN/inf samples left out (``FitStats.dropped``).

    Raises:
        FloatingPointError: on a NaN/inf step when ``surrogate.nonfinite_fit == "raise"``; the
            step is skipped first (the model keeps its previous weights).
    """
    model, optimizer, steps = surrogate.model, surrogate.optimizer, surrogate.fit_steps
    losses: list[float] = []
    before, skipped = float("nan"), 0
    with torch.enable_grad(), num_threads(threads):
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            preds = predict()
            if step == 0:
                before = agreement(preds)
            loss = loss_of(preds)
            loss.backward()
            losses.append(float(loss.detach()))
            if _finite_step(model, distributed.average_gradients(model.parameters(), losses[-1])):
                optimizer.step()
                continue
            skipped += 1
            if surrogate.nonfinite_fit == "raise":
                optimizer.zero_grad(set_to_none=True)
                raise FloatingPointError(
                    f"surrogate fit step {step + 1} of {steps} had a NaN/inf "
                    f"{'loss' if not math.isfinite(losses[-1]) else 'gradient'} (loss "
                    f"{losses[-1]}); that step was skipped (the model keeps its previous "
                    "weights). Lower lr, check the model and fn's outputs, or pass "
                    "nonfinite_fit='skip' to Surrogate to skip such steps and count them in "
                    "stats.skipped"
                )
    optimizer.zero_grad(set_to_none=True)
    after = None
    if surrogate.report_after and losses:
        with torch.no_grad(), num_threads(threads):
            after = agreement_after()
    return surrogate._publish(FitStats(
        loss_first=losses[0] if losses else float("nan"),
        loss_last=losses[-1] if losses else float("nan"), agreement_before=before,
        agreement_after=after, metric=surrogate.fit_loss.metric, samples=samples,
        dropped=dropped, steps=steps - skipped, skipped=skipped,
    ))  # fmt: skip


def _finite_step(model: nn.Module, loss: float) -> bool:
    """Is the loss finite and every gradient of ``model`` finite (one synchronisation)?"""
    if not math.isfinite(loss):
        return False
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return True
    device = grads[0].device
    if device.type in ("cpu", "cuda") and all(
        g.device == device and g.dtype in _AMP_DTYPES and g.layout == torch.strided for g in grads
    ):
        # one fused pass, AMP's check for GradScaler: it multiplies by 1 (every value stays as
        # it is) and raises the flag on a NaN/inf
        found, one = torch.zeros((), device=device), torch.ones((), device=device)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found, one)
        return not bool(found)
    # the largest |gradient| of each tensor: NaN or inf exactly when the tensor holds one
    return bool(torch.stack(torch._foreach_norm(grads, math.inf)).isfinite().all())


#: Gradient dtypes :func:`_finite_step` checks with AMP's fused kernel.
_AMP_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
