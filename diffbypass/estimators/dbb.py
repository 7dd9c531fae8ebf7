"""Blackbox differentiation of combinatorial solvers (Vlastelica et al., 2020)."""

from __future__ import annotations

from torch import Tensor

from diffbypass.base import Estimator, require_real
from diffbypass.blackbox import BlackBox
from diffbypass.validation import positive_number

__all__ = ["DBB"]


class DBB(Estimator):
    r"""Blackbox solver differentiation by :math:`\lambda`-interpolation (Vlastelica et al., 2020).

    For the incoming gradient :math:`v = \partial L/\partial y` at :math:`y = f(x)`, the backward
    pass calls ``fn`` once more, at the input moved along :math:`v`, and returns the published

    .. math::
        \nabla_x f_\lambda = -\frac{1}{\lambda}\big[f(x) - f(x')\big], \qquad x' = x + \lambda v,

    the gradient of a piecewise-linear interpolation of :math:`L(f(\cdot))`. For a linear-objective
    solver (argmin or argmax of :math:`\langle x, y\rangle` over a fixed set) this points the right
    way for either sense; for a linear ``fn`` with a symmetric matrix it is the exact
    vector-Jacobian product. One extra call per backward; no noise, no randomness.

    Args:
        lam: interpolation strength :math:`\lambda > 0` (Vlastelica et al.: 10–20 for solvers
            whose inputs are of order 1). Too small: zero gradient (``f(x') = f(x)``); too
            large: a coarse interpolation.

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
    """

    def __init__(self, *, lam: float = 10.0) -> None:
        super().__init__()
        self.lam = positive_number("lam", lam)

    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        y = require_real(blackbox(x, what="forward"), "DBB")
        if y.shape != x.shape:
            raise ValueError(
                f"DBB needs fn's output to have the input's shape {tuple(x.shape)}; got "
                f"{tuple(y.shape)}. Use Perturbed or ES for shape-changing fns"
            )
        return y

    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        shifted = blackbox(x.detach() + self.lam * grad_y.to(x.dtype), what="DBB interpolation")
        return -(y - shifted) / self.lam

    def extra_repr(self) -> str:
        return f"lam={self.lam}"
