"""Blackbox differentiation of combinatorial solvers (Vlastelica et al., 2020)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from diffbypass.arguments import Call, only_argument_outputs
from diffbypass.base import Estimator, require_real
from diffbypass.blackbox import BlackBox
from diffbypass.validation import positive_number, sense_sign

__all__ = ["DBB"]


class DBB(Estimator):
    r"""Blackbox solver differentiation by :math:`\lambda`-interpolation (Vlastelica et al., 2020).

    For the incoming gradient :math:`v = \partial L/\partial y` at :math:`y = f(x)`, the backward
    pass calls ``fn`` once more, at the input moved along :math:`v`, and returns the gradient of a
    piecewise-linear interpolation of :math:`L(f(\cdot))`. For an argmin-type oracle
    (``sense="min"``, the published rule; e.g. a shortest path of cost :math:`x`)

    .. math::
        \nabla_x f_\lambda = -\frac{1}{\lambda}\big[f(x) - f(x')\big], \qquad x' = x + \lambda v,

    and for an argmax-type oracle (``sense="max"``; e.g. a knapsack of values :math:`x`), which
    is an argmin of :math:`-x`, the same rule applied to :math:`-x`:
    :math:`\nabla_x f_\lambda = \frac{1}{\lambda}[f(x) - f(x - \lambda v)]` (as PyEPO's
    ``blackboxOpt`` does for a maximisation model). The wrong sense moves the solver towards a
    *worse* solution and gives a zero or wrong gradient. For a linear ``fn`` with a symmetric
    matrix, ``sense="min"`` is the exact vector-Jacobian product. One extra call per backward;
    no noise, no randomness.

    Args:
        lam: interpolation strength :math:`\lambda > 0` (Vlastelica et al.: 10–20 for solvers
            whose inputs are of order 1). Too small: zero gradient (``f(x') = f(x)``); too
            large: a coarse interpolation. A ``lam`` so small that :math:`x'` rounds to
            :math:`x`, or so large that :math:`x'` or the gradient is not finite, is an error
            at the backward pass.
        sense: ``"min"`` (default: ``fn`` is an argmin of :math:`\langle x, y\rangle`) or
            ``"max"`` (an argmax), as in :class:`~diffbypass.Perturbed`.

    ``fn`` must map ``(B, ...)`` to the same shape (solution indicator in the cost's layout).

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, DBB
        >>> onehot_min = lambda c: torch.nn.functional.one_hot(c.argmin(-1), 3).to(c.dtype)
        >>> c = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
        >>> y = Bypass(onehot_min, DBB(lam=2.0))(c)  # picks item 0
        >>> (y * torch.tensor([[1.0, 0.0, 0.0]])).sum().backward()  # loss = use of item 0
        >>> c.grad + 0.0  # raising cost 0 by lam * 1 makes item 1 cheapest: (-0.5, 0.5, 0)
        tensor([[-0.5000,  0.5000,  0.0000]])
        >>> onehot_max = lambda c: torch.nn.functional.one_hot(c.argmax(-1), 3).to(c.dtype)
        >>> w = torch.tensor([[1.0, 0.9, 0.0]], requires_grad=True)
        >>> y = Bypass(onehot_max, DBB(lam=2.0, sense="max"))(w)  # picks item 0
        >>> (y * torch.tensor([[1.0, 0.0, 0.0]])).sum().backward()
        >>> w.grad + 0.0  # lowering value 0 by lam * 1 makes item 1 best: (0.5, -0.5, 0)
        tensor([[ 0.5000, -0.5000,  0.0000]])
    """

    def __init__(self, *, lam: float = 10.0, sense: str = "min") -> None:
        super().__init__()
        self.lam = positive_number("lam", lam)
        self._sign = -sense_sign("sense", sense)  # the direction x moves in: +v for an argmin
        self.sense = sense

    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        y = require_real(blackbox(x, what="forward"), "DBB")
        if y.shape != x.shape:
            raise ValueError(
                f"DBB needs fn's output to have the input's shape {tuple(x.shape)}; got "
                f"{tuple(y.shape)}. Use Perturbed or ES for shape-changing fns"
            )
        return y

    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        x = x.detach()
        step = self._sign * self.lam * grad_y.to(x.dtype)
        moved = x + step
        if not bool(torch.isfinite(moved[torch.isfinite(x)]).all()):
            raise ValueError(
                f"DBB(lam={self.lam:g}) moved the input to a non-finite x + lam * grad_y "
                f"(largest |grad_y| {float(grad_y.abs().max()):g}); lower lam"
            )
        if bool((grad_y != 0).any()) and bool((moved == x).all()):
            raise ValueError(
                f"DBB(lam={self.lam:g}) is too small for the incoming gradient (largest |grad_y| "
                f"{float(grad_y.abs().max()):g}): x + lam * grad_y rounds to x in {x.dtype}, so "
                "the gradient would be zero; raise lam"
            )
        shifted = blackbox(moved, what="DBB interpolation")
        grad = self._sign * (shifted - y) / self.lam
        if not bool(torch.isfinite(grad).all()):
            raise ValueError(
                f"DBB(lam={self.lam:g}) gave a non-finite gradient (fn's outputs divided by lam); "
                "raise lam"
            )
        return grad

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        return only_argument_outputs(blackbox, call, "DBB")

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """The interpolation along the one differentiable argument (the others held fixed)."""
        i = call.diff[0]
        one = lambda x, what="forward": blackbox.call(call, call.replaced(i, x), what=what)[0]  # noqa: E731
        return [self.vjp(one, call.leaves[i], ys[0], grad_ys[0])]  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"lam={self.lam}, sense={self.sense!r}"
