"""Central finite differences: the exact (up to O(eps^2)) reference for small inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from diffbypass.validation import positive_number
from diffbypass.base import Estimator, Evaluator, require_real
from diffbypass.blackbox import BlackBoxError

__all__ = ["FiniteDifference"]


class FiniteDifference(Estimator):
    r"""Central differences along every input coordinate.

    .. math::
        \widehat{\nabla}_x \langle v, f(x)\rangle_j
        = \frac{\langle v, f(x + \epsilon e_j) - f(x - \epsilon e_j)\rangle}{2\epsilon}

    costs :math:`2d` evaluations per input of dimension :math:`d` (all in one vectorised call,
    chunked by ``Bypass(max_batch=...)``). For a smooth ``fn`` it is the reference other
    estimators are checked against; for a piecewise-constant ``fn`` it is zero almost everywhere.
    Use float64 inputs for accuracy.

    Args:
        eps: step :math:`\epsilon > 0`.

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, FiniteDifference
        >>> x = torch.tensor([[1.0, 2.0]], dtype=torch.float64, requires_grad=True)
        >>> Bypass(lambda t: t**2, FiniteDifference(eps=1e-4))(x).sum().backward()
        >>> torch.allclose(x.grad, 2 * x.detach())
        True
    """

    def __init__(self, *, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = positive_number("eps", eps)

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        y = blackbox(x, what="forward")
        require_real(y, "FiniteDifference")
        return y

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        b, d = x.shape[0], x[0].numel()
        steps = self.eps * torch.eye(d, dtype=x.dtype, device=x.device).reshape(d, 1, *x.shape[1:])
        xs = torch.cat([x.unsqueeze(0) + steps, x.unsqueeze(0) - steps])  # (2d, B, ...)
        ys, valid = blackbox.many(xs, what="finite differences")
        if valid is not None:
            raise BlackBoxError("FiniteDifference cannot drop samples: fn returned NaN/inf")
        slope = (ys[:d] - ys[d:]) / (2 * self.eps)  # (d, B, *out)
        g = (slope * grad_y.unsqueeze(0)).reshape(d, b, -1).sum(dim=2)  # (d, B)
        return g.T.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
