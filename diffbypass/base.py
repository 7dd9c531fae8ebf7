"""The two contracts of diffbypass: a black box and a gradient estimator.

A *black box* is any callable on a batched input (leading batch dimension) that returns a tensor
or NumPy array with the same leading dimension. diffbypass never differentiates it.

An *estimator* decides what :class:`~diffbypass.Bypass` returns as the input gradient. It is an
``nn.Module`` so that its state (a surrogate network, an optimiser, a random generator) travels
with ``state_dict`` and follows ``.train()`` / ``.eval()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar, Union

import numpy as np
from torch import Tensor, nn

if TYPE_CHECKING:
    from diffbypass.blackbox import BlackBox

__all__ = ["BlackBoxFn", "Estimator", "require_real"]

BlackBoxFn = Callable[[Tensor], Union[Tensor, np.ndarray]]
"""A function on a batch ``x`` of shape ``(B, ...)`` returning an output of shape ``(B, ...)``."""


class Estimator(nn.Module, ABC):
    """How a :class:`~diffbypass.Bypass` obtains the input gradient of a black box.

    ``Bypass`` calls :meth:`output` in its forward pass and :meth:`vjp` in its backward pass.
    """

    #: Whether :meth:`vjp` evaluates the black box (ES, finite differences) or not (Surrogate).
    calls_fn_in_backward: ClassVar[bool] = True

    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        """Return ``fn(x)``; an estimator may do extra work here (the surrogate fits itself)."""
        return blackbox(x, what="forward")

    @abstractmethod
    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        """Return the estimated vector-Jacobian product ``grad_y^T dfn/dx`` with ``x``'s shape."""

    def forward(self, *args: object, **kwargs: object) -> Tensor:  # pragma: no cover - guard
        raise TypeError(
            f"{type(self).__name__} is a gradient estimator, not a layer: wrap a function with "
            f"Bypass(fn, {type(self).__name__}(...)) and call the Bypass."
        )


def require_real(
    y: Tensor, estimator: str, fix: str = "Return floats from fn"
) -> Tensor:
    """Return ``y`` if it is floating point, else raise the estimator's ``TypeError``.

    Estimators that weight fn's output by the incoming gradient (ES, finite differences,
    straight-through) have nothing to weight in an integer (index) output.
    """
    if not y.is_floating_point():
        raise TypeError(f"{estimator} needs a real-valued fn output; got {y.dtype}. {fix}")
    return y
