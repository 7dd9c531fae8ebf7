"""Straight-through estimator: pretend the black box is the identity in the backward pass."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from diffbypass.arguments import Call, only_argument_outputs
from diffbypass.base import Estimator, Evaluator, require_real
from diffbypass.validation import finite_number

__all__ = ["StraightThrough"]


class StraightThrough(Estimator):
    """Scaled identity vector-Jacobian product: ``grad_x = scale * grad_y`` (Bengio et al., 2013).

    Args:
        scale: the factor; ``1`` (default) for quantisers, signs and argmax-type oracles
            (a larger input raises the output), ``-1`` — the *negative identity* — for
            argmin-type oracles such as shortest paths (a larger cost makes an item less likely
            to be chosen; PyEPO's ``negativeIdentity``). With ``scale=1`` on an argmin oracle,
            training ascends the loss.

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

    def __init__(self, *, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = finite_number("scale", scale)
        if self.scale == 0:
            raise ValueError(
                "scale must be non-zero (1 for argmax-type, -1 for argmin-type fns); got 0"
            )

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
        return grad_y if self.scale == 1 else self.scale * grad_y

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        return only_argument_outputs(blackbox, call, "StraightThrough")

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """The scaled output gradient, for the one differentiable argument of the output's shape."""
        return [self.vjp(blackbox, call.leaves[call.diff[0]], ys[0], grad_ys[0])]

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
