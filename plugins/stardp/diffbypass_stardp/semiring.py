r"""Semirings for the star-pattern DP: the hard minimum and the temperature-controlled soft minimum.

The DP recursion (:func:`~diffbypass_stardp.dp_torch`) is written once; it adds costs
(:math:`\otimes = +`) and reduces alternatives with the semiring's :math:`\oplus`
(pytorch-struct style). Two :math:`\oplus` are offered:

* :class:`HardMin` — :math:`\min`, with the index of the (first) minimiser for back-tracking;
* :class:`SoftMin` — :math:`-\tau \log \sum \exp(-x/\tau)`, smooth, tending to :math:`\min` as
  :math:`\tau \to 0`; its gradient with respect to the inputs is the softmax of
  :math:`-x/\tau`, so the gradient of a soft DP value with respect to the costs is the matrix of
  marginal probabilities of the Gibbs distribution :math:`p(v) \propto \exp(-E(v)/\tau)`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = ["HardMin", "Semiring", "SoftMin"]


class Semiring(ABC):
    """A min-plus-like semiring: :math:`\\otimes` is addition, :meth:`reduce` is :math:`\\oplus`."""

    @abstractmethod
    def reduce(self, x: Tensor, dim: int) -> tuple[Tensor, Tensor | None]:
        """:math:`\\oplus`-reduce ``x`` over ``dim``; also the arg-choice (hard) or ``None``."""

    @staticmethod
    def unreachable(dtype: torch.dtype) -> float:
        """A finite stand-in for :math:`+\\infty` (keeps soft-min gradients free of NaN)."""
        return torch.finfo(dtype).max / 16


class HardMin(Semiring):
    """:math:`\\oplus = \\min`; the choice is the first (smallest) index among equal minima.

    Example:
        >>> import torch
        >>> HardMin().reduce(torch.tensor([[3.0, 1.0, 1.0]]), dim=-1)
        (tensor([1.]), tensor([1]))
    """

    def reduce(self, x: Tensor, dim: int) -> tuple[Tensor, Tensor | None]:
        values, choice = torch.min(x, dim=dim)
        return values, choice

    def __repr__(self) -> str:
        return "HardMin()"


class SoftMin(Semiring):
    r""":math:`\oplus_\tau(x) = -\tau \log \sum_k \exp(-x_k / \tau)`, computed stably.

    :math:`\min(x) - \tau \log K \le \oplus_\tau(x) \le \min(x)` for :math:`K` alternatives.

    Args:
        temperature: :math:`\tau > 0`.

    Example:
        >>> import torch
        >>> SoftMin(0.5).reduce(torch.tensor([[0.0, 0.0]]), dim=-1)[0]   # -0.5 log 2
        tensor([-0.3466])
    """

    def __init__(self, temperature: float = 1.0) -> None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not temperature > 0
            or not math.isfinite(temperature)
        ):
            raise ValueError(f"temperature must be a finite positive number; got {temperature!r}")
        self.temperature = float(temperature)

    def reduce(self, x: Tensor, dim: int) -> tuple[Tensor, Tensor | None]:
        tau = self.temperature
        low = x.detach().amin(dim=dim, keepdim=True)
        total = torch.exp(-(x - low) / tau).sum(dim=dim, keepdim=True)
        return (low - tau * torch.log(total)).squeeze(dim), None

    def __repr__(self) -> str:
        return f"SoftMin(temperature={self.temperature})"
