"""The contracts of diffbypass: a black box, its evaluation, and a gradient estimator.

A *black box* is any callable on a batched input (leading batch dimension) that returns a tensor
or NumPy array with the same leading dimension. diffbypass never differentiates it.

An *estimator* decides what :class:`~diffbypass.Bypass` returns as the input gradient. It is an
``nn.Module`` so that its state (a surrogate network, an optimiser, a random generator) travels
with ``state_dict`` and follows ``.train()`` / ``.eval()``. It reaches the black box only through
an :class:`Evaluator` (in practice a :class:`~diffbypass.BlackBox`).

Optional abilities are declared, not probed: an estimator that can :meth:`~Predictor.predict`
is a :class:`Predictor`; one that keeps telemetry of its last update is a :class:`Reporter`; one
that smooths ``fn`` with a noise scale is :class:`Smoothed`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Optional, Protocol, Union, runtime_checkable

import numpy as np
from torch import Tensor, nn

__all__ = [
    "BlackBoxError",
    "BlackBoxFn",
    "Estimator",
    "Evaluator",
    "Predictor",
    "Reporter",
    "Smoothed",
    "require_real",
    "require_real_outputs",
]

BlackBoxFn = Callable[[Tensor], Union[Tensor, np.ndarray]]
"""A function on a batch ``x`` of shape ``(B, ...)`` returning an output of shape ``(B, ...)``."""


class BlackBoxError(RuntimeError):
    """The black box raised, hung, or returned something unusable; the message names the
    evaluation (forward, ES samples, surrogate fit samples, finite differences) and the chunk."""


class Evaluator(Protocol):
    """How an estimator evaluates the black box (implemented by :class:`~diffbypass.BlackBox`)."""

    def __call__(self, x: Tensor, *, what: str = "forward") -> Tensor:
        """``fn(x)`` for a batch ``(B, ...)``, checked; ``what`` names the evaluation in errors."""

    def many(self, xs: Tensor, *, what: str) -> tuple[Tensor, Optional[Tensor]]:
        """``fn`` on ``(S, B, ...)``: outputs ``(S, B, ...)`` and a mask of usable samples."""


class Estimator(nn.Module, ABC):
    """How a :class:`~diffbypass.Bypass` obtains the input gradient of a black box.

    ``Bypass`` calls :meth:`output` in its forward pass and :meth:`vjp` in its backward pass.
    """

    #: Whether :meth:`vjp` evaluates the black box (ES, finite differences) or not (Surrogate).
    calls_fn_in_backward: ClassVar[bool] = True

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        """Return ``fn(x)``; an estimator may do extra work here (the surrogate fits itself)."""
        return blackbox(x, what="forward")

    @abstractmethod
    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        """Return the estimated vector-Jacobian product ``grad_y^T dfn/dx`` with ``x``'s shape."""

    def output_call(self, blackbox: Any, call: Any) -> tuple[Tensor, ...]:
        """Return ``fn``'s outputs for a call with several arguments or outputs (a
        :class:`~diffbypass.arguments.Call`, evaluated by ``blackbox.call(call)``)."""
        raise TypeError(
            f"{type(self).__name__} supports one tensor argument and one output only; fn was "
            f"called with the arguments {tuple(call.names)}. Use ES, Perturbed, Surrogate or "
            "FiniteDifference for black boxes with several arguments or outputs"
        )

    def vjp_call(
        self, blackbox: Any, call: Any, ys: tuple[Tensor, ...], grad_ys: tuple[Tensor, ...]
    ) -> list[Tensor]:
        """Return the gradient of every differentiable leaf of ``call`` (``call.diff``), each
        with its leaf's shape (a shared leaf's summed over the batch), for the incoming
        gradients ``grad_ys`` of the outputs ``ys``."""
        raise NotImplementedError  # pragma: no cover - output_call refuses first

    def forward(self, *args: object, **kwargs: object) -> Tensor:  # pragma: no cover - guard
        raise TypeError(
            f"{type(self).__name__} is a gradient estimator, not a layer: wrap a function with "
            f"Bypass(fn, {type(self).__name__}(...)) and call the Bypass."
        )


@runtime_checkable
class Predictor(Protocol):
    """An estimator with a differentiable stand-in for ``fn`` (e.g. the fitted surrogate)."""

    def predict(self, x: Tensor) -> Tensor:
        """The prediction of ``fn(x)``; gradients flow to ``x`` only."""


@runtime_checkable
class Reporter(Protocol):
    """An estimator that keeps telemetry of its last update in ``stats``.

    The built-in ones (:class:`~diffbypass.Surrogate`, :class:`~diffbypass.ES`) also call hooks
    registered with ``register_fit_hook(hook)`` as ``hook(estimator, stats)`` after every update.
    """

    #: the last telemetry record (``None`` before the first update)
    stats: Any


@runtime_checkable
class Smoothed(Protocol):
    """An estimator that perturbs ``fn``'s input with Gaussian noise of scale ``sigma``."""

    @property
    def sigma(self) -> float:
        """The noise scale."""


def require_real(y: Tensor, estimator: str, fix: str = "Return floats from fn") -> Tensor:
    """Return ``y`` if it is floating point, else raise the estimator's ``TypeError``.

    Estimators that weight fn's output by the incoming gradient (ES, finite differences,
    straight-through) have nothing to weight in an integer (index) output.
    """
    if not y.is_floating_point():
        raise TypeError(f"{estimator} needs a real-valued fn output; got {y.dtype}. {fix}")
    return y


def require_real_outputs(ys: tuple[Tensor, ...], estimator: str) -> tuple[Tensor, ...]:
    """Return ``ys`` if at least one output is floating point (integer outputs carry no
    gradient), else raise the estimator's ``TypeError``."""
    if not any(y.is_floating_point() for y in ys):
        raise TypeError(
            f"{estimator} needs a real-valued fn output; got only integer outputs "
            f"({', '.join(str(y.dtype) for y in ys)}), which carry no gradient. Return floats "
            "from fn, or use Surrogate(fit_loss='ce') with a loss on Bypass.predict"
        )
    return ys
