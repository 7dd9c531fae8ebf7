"""One registry of estimators for black boxes with several arguments; ``test_multi_input.py``
checks every entry's gradient, argument by argument, against autograd of the same function.

The black box :func:`quad` has arguments of different shapes — ``x`` ``(B, 4)`` and ``aux``
``(B, 2, 2)`` batched, ``theta`` ``(3,)`` shared by the batch — and a non-tensor argument ``k``.
It is quadratic, so its Gaussian smoothing differs from it by a constant: the smoothed gradient
that ES and Perturbed estimate *is* autograd's gradient (their closed form), and with antithetic
pairs the estimate is :math:`\\frac{2}{S}\\sum_{pairs} \\varepsilon\\varepsilon^\\top g`, whose
relative error is about :math:`\\sqrt{d/(S/2)}` for the :math:`d` coordinates one output item
depends on. GuidedES with a perfect guide: the unbiased split has the same closed form; the
paper's variant leans towards the guide, its mean is :math:`(\\alpha + (1-\\alpha) n_j / k)`
times argument :math:`j`'s gradient (:math:`n_j` the size of one item of it, :math:`k = 1`
direction). To add an estimator, append a :class:`MultiSpec` to :data:`SPECS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from diffbypass import (
    ES, Estimator, FiniteDifference, Gated, GuidedES, Perturbed, Relative, Surrogate,
)  # fmt: skip

from ._fns import gen

W = torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.3, 0.2, -1.0, 1.5], [-0.7, 0.0, 0.4, 0.9]])
V = torch.tensor([[0.5, -1.0, 0.25, 2.0], [1.0, 0.0, -0.5, 0.3], [0.2, 0.6, 0.0, -0.4]])
SHARED = ("theta",)
SIGMA = {"x": 0.2, "aux": 0.2, "theta": Relative(0.1)}


def quad(x: Tensor, aux: Tensor, theta: Tensor, k: int, w: Tensor | None = None) -> Tensor:
    """``(B, 3)``: ``(x W^T) * theta + k/10 (aux V^T)^2 + theta^2 / 2``; ``k`` is an int."""
    if not isinstance(k, int):
        raise TypeError(f"k must arrive as an int; got {type(k).__name__}")
    w = W.to(x) if w is None else w
    return (x @ w.T) * theta + 0.1 * k * (aux.flatten(1) @ V.to(x).T) ** 2 + 0.5 * theta**2


def quad_pair(x: Tensor, aux: Tensor, theta: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Three outputs: :func:`quad`, its row sums ``(B,)`` and its argmax (integer, no gradient)."""
    y = quad(x, aux, theta, k)
    return y, y.sum(1), y.argmax(1)


def quad_tree(inputs: dict[str, Tensor], theta: Tensor, k: int) -> Tensor:
    """:func:`quad` with its batched arguments in a dict (a pytree)."""
    return quad(inputs["x"], inputs["aux"], theta, k)


def quad_guide(x: Tensor, aux: Tensor, theta: Tensor, k: int, grad_y: Tensor) -> tuple[Tensor, ...]:
    """A perfect function guide for :func:`quad`: autograd's gradient of
    :math:`\\langle` ``grad_y``, ``quad`` :math:`\\rangle` for ``x``, ``aux`` and ``theta``."""
    leaves = [t.detach().requires_grad_(True) for t in (x, aux, theta)]
    return torch.autograd.grad((quad(*leaves, k) * grad_y).sum(), leaves)


class QuadNet(nn.Module):
    """A surrogate network that can represent :func:`quad` (``W`` learnable); ``exact=True``
    starts at the true ``W``."""

    def __init__(self, exact: bool, seed: int = 0) -> None:
        super().__init__()
        noise = torch.randn(W.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        self.w = nn.Parameter(W.double() + (0.0 if exact else 0.5 * noise))

    def forward(self, x: Tensor, aux: Tensor, theta: Tensor, k: int) -> Tensor:
        return quad(x, aux, theta, k, w=self.w)


def arguments(seed: int, batch: int = 5) -> tuple[Tensor, Tensor, Tensor, int]:
    """``(x, aux, theta, k)`` in float64, seeded."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, generator=g, dtype=torch.float64)
    aux = torch.randn(batch, 2, 2, generator=g, dtype=torch.float64)
    theta = 1.0 + torch.rand(3, generator=g, dtype=torch.float64)
    return x, aux, theta, 3


@dataclass(frozen=True)
class MultiSpec:
    """An estimator under the multi-input suite.

    Attributes:
        name: the test id.
        make: ``seed -> estimator`` (fresh; its randomness from ``seed`` only).
        rtol: the largest relative error ``|g - g_ref| / |g_ref|`` allowed per argument.
        factors: the estimator's mean is autograd's gradient times these, per argument
            ``(x, aux, theta)`` (the closed form of a biased estimator).
    """

    name: str
    make: Callable[[int], Estimator]
    rtol: float
    factors: tuple[float, float, float] = (1.0, 1.0, 1.0)


SPECS = [
    MultiSpec("finite_difference", lambda s: FiniteDifference(eps=1e-5), 1e-7),
    MultiSpec("surrogate_exact", lambda s: Surrogate(QuadNet(exact=True), fit_steps=0), 1e-12),
    MultiSpec(
        "surrogate_fitted",
        lambda s: Surrogate(QuadNet(exact=False, seed=s), sigma=SIGMA, samples=8, fit_steps=400,
                            lr=0.05, generator=gen(s)),
        1e-3,
    ),
    # closed form: the smoothed gradient of a quadratic is its gradient; error ~ sqrt(11 / 4000)
    MultiSpec("es", lambda s: ES(sigma=SIGMA, samples=8000, generator=gen(s)), 0.12),
    MultiSpec(
        "perturbed",
        lambda s: Perturbed(sigma=SIGMA, samples=8000, antithetic=True, generator=gen(s)),
        0.12,
    ),
    # a perfect guide; theta's gradient is the noisiest (its items' directions differ), hence S
    MultiSpec(
        "guided_es_unbiased",
        lambda s: GuidedES(Surrogate(QuadNet(exact=True), fit_steps=0), sigma=SIGMA,
                           samples=32000, variant="unbiased", generator=gen(s)),
        0.12,
    ),
    MultiSpec(  # alpha = 0.5: factors 0.5 + 0.5 * (4, 4, 3)
        "guided_es_paper",
        lambda s: GuidedES(quad_guide, sigma=SIGMA, samples=32000, generator=gen(s)),
        0.12,
        (2.5, 2.5, 2.0),
    ),
    MultiSpec(
        "gated_exact",
        lambda s: Gated(Surrogate(QuadNet(exact=True), fit_steps=0),
                        probe=ES(sigma=SIGMA, samples=64, generator=gen(s))),
        1e-12,
    ),
]
