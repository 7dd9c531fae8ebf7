"""Straight-through estimator: pretend the black box is the identity in the backward pass."""

from __future__ import annotations

from torch import Tensor

from diffbypass.base import Estimator, Evaluator, require_real

__all__ = ["StraightThrough"]


class StraightThrough(Estimator):
    """Identity vector-Jacobian product: ``grad_x = grad_y`` (Bengio et al., 2013).

    Only defined when ``fn`` maps ``(B, ...)`` to the same shape; a different output shape is an
    error at the first call. Cheap and biased: useful as a baseline for quantisers and signs.

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, StraightThrough
        >>> x = torch.tensor([[0.2, -1.3]], requires_grad=True)
        >>> Bypass(torch.round, StraightThrough())(x).sum().backward()
        >>> x.grad
        tensor([[1., 1.]])
    """

    calls_fn_in_backward = False

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        y = blackbox(x, what="forward")
        if y.shape != x.shape:
            raise ValueError(
                "StraightThrough needs fn's output to have the input's shape "
                f"{tuple(x.shape)}; got {tuple(y.shape)}. Use Surrogate or ES instead"
            )
        require_real(y, "StraightThrough")
        return y

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        return grad_y
