r"""Semirings for the star-pattern DP: the hard minimum and the temperature-controlled soft minimum.

The DP recursion (:func:`~diffbypass_stardp.dp_torch`) is written once; it adds costs
(:math:`\otimes = +`) and reduces alternatives with the semiring's :math:`\oplus`
(pytorch-struct style). Two :math:`\oplus` are offered:

* :class:`HardMin` — :math:`\min`; it selects one of its arguments, so the DP can back-track;
* :class:`SoftMin` — :math:`-\tau \log \sum \exp(-x/\tau)`, smooth, tending to :math:`\min` as
  :math:`\tau \to 0`; its gradient with respect to the inputs is the softmax of
  :math:`-x/\tau`, so the gradient of a soft DP value with respect to the costs is the matrix of
  marginal probabilities of the Gibbs distribution :math:`p(v) \propto \exp(-E(v)/\tau)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from diffbypass.validation import positive_number

__all__ = ["HardMin", "Semiring", "SoftMin"]


class Semiring(ABC):
    """A min-plus-like semiring: :math:`\\otimes` is addition, :meth:`plus` is :math:`\\oplus`."""

    #: Whether :math:`\oplus` picks one of its arguments (then the DP can back-track).
    selects: ClassVar[bool] = False

    @abstractmethod
    def plus(self, *xs: Tensor) -> Tensor:
        """Elementwise :math:`\\oplus` of same-shaped tensors (at least one)."""

    def reduce(self, x: Tensor, dim: int) -> Tensor:
        """:math:`\\oplus` over one dimension of ``x``."""
        return self.plus(*x.unbind(dim))

    @staticmethod
    def unreachable(dtype: torch.dtype) -> float:
        """A finite stand-in for :math:`+\\infty` (keeps soft-min gradients free of NaN)."""
        return torch.finfo(dtype).max / 16


class HardMin(Semiring):
    """:math:`\\oplus = \\min` (it selects an argument, so the DP can back-track).

    Example:
        >>> import torch
        >>> HardMin().plus(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 2.0]))
        tensor([2., 1.])
    """

    selects = True

    def plus(self, *xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = torch.minimum(out, x)
        return out

    def __repr__(self) -> str:
        return "HardMin()"


class SoftMin(Semiring):
    r""":math:`\oplus_\tau(x_1, \dots, x_K) = -\tau \log \sum_k \exp(-x_k / \tau)`, computed stably.

    :math:`\min_k x_k - \tau \log K \le \oplus_\tau \le \min_k x_k`; the gradient is the softmax
    of :math:`-x/\tau`, and higher derivatives are exact too (the shift by the minimum used for
    stability is treated as a constant, which it is for the value).

    Args:
        temperature: :math:`\tau > 0`.

    Example:
        >>> import torch
        >>> SoftMin(0.5).plus(torch.tensor([0.0]), torch.tensor([0.0]))   # -0.5 log 2
        tensor([-0.3466])
    """

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = positive_number("temperature", temperature)

    def plus(self, *xs: Tensor) -> Tensor:
        tau = self.temperature
        low = HardMin().plus(*(x.detach() for x in xs))
        total = torch.exp((low - xs[0]) / tau)
        for x in xs[1:]:
            total = total + torch.exp((low - x) / tau)
        return low - tau * torch.log(total)

    def __repr__(self) -> str:
        return f"SoftMin(temperature={self.temperature})"
