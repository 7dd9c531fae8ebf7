"""Fit losses of :class:`~diffbypass.Surrogate`: the loss, its agreement metric, its output check.

A :class:`FitLoss` owns everything that depends on how the surrogate's prediction is paired with
``fn``'s output: the loss the optimiser minimises, the agreement reported in
:class:`~diffbypass.FitStats`, and the check that the two fit together. The names ``"mse"`` and
``"ce"`` are looked up in one table, :data:`FIT_LOSSES`, by :func:`fit_loss`.

Example:
    >>> import torch
    >>> from diffbypass.losses import CrossEntropy, fit_loss
    >>> loss = fit_loss("ce")
    >>> isinstance(loss, CrossEntropy), loss.metric
    (True, 'accuracy')
    >>> loss.check((2, 3), torch.tensor([[0, 2]]), "forward")  # logits (2, K=3) for 2 indices
    >>> loss.check((2, 3), torch.tensor([[0, 3]]), "forward")
    Traceback (most recent call last):
    ...
    diffbypass.base.BlackBoxError: fn returned class index 3 in forward; the surrogate has 3 classes (its last axis)
"""

from __future__ import annotations

from typing import Callable, Union

import torch.nn.functional as F
from torch import Tensor

from diffbypass.base import BlackBoxError, require_real
from diffbypass.stats import agreement

__all__ = ["FIT_LOSSES", "CrossEntropy", "CustomLoss", "FitLoss", "MSE", "fit_loss"]


class FitLoss:
    """How a surrogate's prediction is compared with ``fn``'s output.

    Subclasses set :attr:`name` and :attr:`metric` and implement :meth:`__call__`; :meth:`check`
    accepts everything by default.
    """

    #: the name shown in ``repr`` (the key of :data:`FIT_LOSSES` for the built-in losses)
    name: str = "custom"
    #: the agreement metric of :class:`~diffbypass.FitStats`: ``"r2"`` or ``"accuracy"``
    metric: str = "r2"

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        """The scalar loss of ``prediction`` (the model's output) against ``fn``'s ``target``."""
        raise NotImplementedError

    def check(self, prediction_shape: tuple[int, ...], target: Tensor, what: str) -> None:
        """Raise :class:`~diffbypass.BlackBoxError` (or, for the wrong kind of output, the
        ``TypeError`` that estimators give for it) if ``target`` (fn's outputs ``(B, ...)``)
        cannot be fitted by a model whose per-item output shape is ``prediction_shape``."""

    def agreement(self, prediction: Tensor, target: Tensor) -> float:
        """Agreement of the model with ``fn`` (:func:`~diffbypass.stats.agreement`)."""
        return agreement(prediction, target, self.metric)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSE(FitLoss):
    """Mean squared error for real outputs; the model returns ``fn``'s per-item shape.

    Integer outputs (class indices) are refused, as :class:`~diffbypass.ES` refuses them: they
    carry no gradient, so the bypass would be fitted and then never used.
    """

    name, metric = "mse", "r2"

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(prediction, target.to(prediction.dtype))

    def check(self, prediction_shape: tuple[int, ...], target: Tensor, what: str) -> None:
        require_real(
            target, "Surrogate(fit_loss='mse')",
            "Integer outputs carry no gradient: return floats from fn (e.g. indices.float()), "
            "or use fit_loss='ce' and put the loss on Bypass.predict(x)",
        )  # fmt: skip
        expected = tuple(target.shape[1:])
        if prediction_shape != expected:
            raise BlackBoxError(
                f"the surrogate must return fn's per-item shape {expected}; got {prediction_shape}"
            )


class CrossEntropy(FitLoss):
    """Cross-entropy for integer class indices; the model returns logits with a last class axis.

    ``fn``'s indices must lie in ``[0, K)`` for the model's ``K`` classes: checked here, once,
    for the forward output and for every batch of fit samples.
    """

    name, metric = "ce", "accuracy"

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(prediction.reshape(-1, prediction.shape[-1]), target.reshape(-1))

    def check(self, prediction_shape: tuple[int, ...], target: Tensor, what: str) -> None:
        if target.is_floating_point():
            raise BlackBoxError(
                f"fit_loss='ce' needs fn to return integer class indices; got {target.dtype}"
            )
        expected = tuple(target.shape[1:])
        if len(prediction_shape) != len(expected) + 1 or prediction_shape[:-1] != expected:
            raise BlackBoxError(
                f"with fit_loss='ce' the surrogate must return logits of shape (B, *{expected}, "
                f"K); got (B, *{prediction_shape})"
            )
        if target.numel() == 0:
            return
        low, high, classes = int(target.min()), int(target.max()), prediction_shape[-1]
        if low < 0:
            raise BlackBoxError(f"fn returned a negative class index ({low}) in {what}")
        if high >= classes:
            raise BlackBoxError(
                f"fn returned class index {high} in {what}; the surrogate has {classes} classes "
                "(its last axis)"
            )


class CustomLoss(FitLoss):
    """A callable ``loss(prediction, target) -> scalar``; it defines its own pairing (no check)."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, prediction: Tensor, target: Tensor) -> Tensor:
        return self.fn(prediction, target)

    def __repr__(self) -> str:
        return f"CustomLoss({self.name})"


FIT_LOSSES: dict[str, type[FitLoss]] = {"mse": MSE, "ce": CrossEntropy}
"""The fit losses by name: the one place where ``"mse"`` and ``"ce"`` are spelled."""

FitLossSpec = Union[str, FitLoss, Callable[[Tensor, Tensor], Tensor]]


def fit_loss(spec: FitLossSpec) -> FitLoss:
    """The :class:`FitLoss` for a name in :data:`FIT_LOSSES`, a ``FitLoss`` or a callable."""
    if isinstance(spec, FitLoss):
        return spec
    if isinstance(spec, str):
        if spec in FIT_LOSSES:
            return FIT_LOSSES[spec]()
    elif callable(spec):
        return CustomLoss(spec)
    names = ", ".join(repr(n) for n in FIT_LOSSES)
    raise ValueError(f"fit_loss must be {names} or a callable; got {spec!r}")
