"""Central finite differences: the exact (up to O(eps^2)) reference for small inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from typing import Any

from diffbypass.arguments import Call, flatten_outputs
from diffbypass.base import Estimator, Evaluator, require_real, require_real_outputs
from diffbypass.validation import positive_number
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

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        return require_real_outputs(blackbox.call(call), "FiniteDifference")

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """Central differences along every coordinate of every differentiable argument: a
        batched argument's item coordinates for all items at once (:math:`2d` calls' worth of
        items), a shared argument's coordinates one at a time (:math:`2d` calls of the batch)."""
        real = [k for k, y in enumerate(ys) if y.is_floating_point()]
        v = flatten_outputs([grad_ys[k] for k in real], 1)  # type: ignore[misc]
        grads = []
        for i in call.diff:
            leaf, shared = call.leaves[i], call.shared[i]
            item = tuple(leaf.shape) if shared else tuple(leaf.shape[1:])
            d = leaf.numel() if shared else leaf[0].numel()
            eye = torch.eye(d, dtype=leaf.dtype, device=leaf.device)
            steps = self.eps * eye.reshape(d, *(() if shared else (1,)), *item)
            perturbed: list[Tensor | None] = [None] * len(call.leaves)
            perturbed[i] = torch.cat([leaf.unsqueeze(0) + steps, leaf.unsqueeze(0) - steps])
            outs, valid = blackbox.many_calls(call, perturbed, what=f"finite differences of {call.names[i]}")
            if valid is not None:
                raise BlackBoxError("FiniteDifference cannot drop samples: fn returned NaN/inf")
            flat = flatten_outputs([outs[k] for k in real], 2)
            g = (((flat[:d] - flat[d:]) / (2 * self.eps)) * v.unsqueeze(0)).sum(dim=2)  # (d, B)
            grads.append(g.sum(dim=1).reshape(item) if shared else g.T.reshape(leaf.shape))
        return grads

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
