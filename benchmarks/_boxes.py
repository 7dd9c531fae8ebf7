"""The black boxes of ``estimators.py``, each with its Gaussian-smoothed reference in closed form.

``make_box(name, d, gen)`` returns a :class:`Box`: the black box ``fn`` (float32), its smoothed
version ``E f(x + sigma eps)`` (float64, differentiable: the reference gradient), the exact
function where it has one, and a surrogate model that matches its structure. The method is
in the docstring of ``estimators.py``. :func:`trajectory`, :func:`vjp_of` and :func:`cosine` are
the measurement helpers that ``estimators.py`` and ``guided_gating.py`` share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

BOXES = ("smooth", "sign", "argmax", "rank")
SIGMA = 0.5
RHO = 0.05
HIDDEN = 32  # hidden units of the smooth black box
GH_Z, GH_W = np.polynomial.hermite_e.hermegauss(64)
GH_Z, GH_W = torch.tensor(GH_Z), torch.tensor(GH_W / math.sqrt(2 * math.pi))


def trajectory(d: int, steps: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inputs ``x_{t+1} = sqrt(1 - rho^2) x_t + rho xi_t`` (each N(0, I)) and fresh ``v_t``."""
    xs, vs = torch.empty(steps, 1, d), torch.randn(steps, 1, d, generator=gen)
    x = torch.randn(1, d, generator=gen)
    for t in range(steps):
        xs[t] = x
        x = math.sqrt(1 - RHO**2) * x + RHO * torch.randn(1, d, generator=gen)
    return xs, vs


def vjp_of(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    """``v^T df/dx`` by autograd in float64 (the reference gradients)."""
    xx = x.double().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xx), xx, v.double())
    return g


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine of two tensors (flattened); 0 when either is zero."""
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


def group_size(d: int) -> int:
    return 8 if d % 8 == 0 else 65


@dataclass
class Box:
    name: str
    d: int
    fn: Callable[[Tensor], Tensor]  # the black box, float32 in and out
    smoothed: Callable[[Tensor], Tensor]  # E f(x + sigma eps), float64, differentiable
    exact: Callable[[Tensor], Tensor] | None = None  # f itself, differentiable (smooth box only)
    model: Callable[[], nn.Module] | None = None
    fit_loss: object = "mse"
    surrogate_samples: tuple[int, ...] = (10,)
    replay: bool = False  # also measure the surrogate with a ReplayBuffer (dense models)


class PerCoordinate(nn.Module):
    """One small MLP applied to every coordinate (elementwise boxes)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(-1)).squeeze(-1)


class PerGroup(nn.Module):
    """One MLP k -> hidden -> k applied to every group of k coordinates (optionally softmax)."""

    def __init__(self, k: int, hidden: int = 64, softmax: bool = False) -> None:
        super().__init__()
        self.k, self.softmax = k, softmax
        self.net = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, k))

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x.reshape(*x.shape[:-1], -1, self.k))
        return (out.softmax(-1) if self.softmax else out).flatten(-2)


def soft_cross_entropy(k: int) -> Callable[[Tensor, Tensor], Tensor]:
    def loss(prob: Tensor, onehot: Tensor) -> Tensor:
        return -(onehot * prob.clamp_min(1e-8).log()).sum(-1).mean() * k

    return loss


def make_box(name: str, d: int, gen: torch.Generator) -> Box:
    k = group_size(d)
    groups = lambda x: x.reshape(*x.shape[:-1], -1, k)  # noqa: E731
    if name == "sign":
        return Box(name, d, torch.sign, lambda x: 2 * torch.special.ndtr(x / SIGMA) - 1,
                   model=PerCoordinate)  # fmt: skip
    if name == "argmax":
        def argmax(x: Tensor) -> Tensor:
            g = groups(x)
            return torch.zeros_like(g).scatter_(-1, g.argmax(-1, keepdim=True), 1.0).flatten(-2)

        def smoothed(x: Tensor) -> Tensor:
            g = groups(x)
            a = (g.unsqueeze(-1) - g.unsqueeze(-2)) / SIGMA  # (..., i, j): (x_i - x_j)/sigma
            z = GH_Z.to(x.dtype)
            logs = torch.special.log_ndtr(a.unsqueeze(-1) + z).sum(-2)  # sum over j, incl. j = i
            logs = logs - torch.special.log_ndtr(z)  # remove the j = i factor Phi(z)
            return (logs.exp() * GH_W.to(x.dtype)).sum(-1).flatten(-2)

        return Box(name, d, argmax, smoothed, model=lambda: PerGroup(k, softmax=True),
                   fit_loss=soft_cross_entropy(k))  # fmt: skip
    if name == "rank":
        def rank(x: Tensor) -> Tensor:
            return groups(x).argsort(-1).argsort(-1).to(x.dtype).flatten(-2) / (k - 1)

        def smoothed(x: Tensor) -> Tensor:
            g = groups(x)
            p = torch.special.ndtr((g.unsqueeze(-1) - g.unsqueeze(-2)) / (SIGMA * math.sqrt(2)))
            return ((p.sum(-1) - 0.5) / (k - 1)).flatten(-2)

        return Box(name, d, rank, smoothed, model=lambda: PerGroup(k))
    if name == "smooth":
        w1 = torch.randn(HIDDEN, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
        b1 = 0.5 * torch.randn(HIDDEN, generator=gen, dtype=torch.float64)
        w2 = torch.randn(d, HIDDEN, generator=gen, dtype=torch.float64) / math.sqrt(HIDDEN)
        w1f, b1f, w2f = w1.float(), b1.float(), w2.float()

        def smooth(x: Tensor) -> Tensor:
            return torch.tanh(x @ w1f.T + b1f) @ w2f.T

        def exact(x: Tensor) -> Tensor:
            return torch.tanh(x @ w1.T + b1) @ w2.T

        def smoothed(x: Tensor) -> Tensor:  # E tanh(a + sigma |w_j| z) per hidden unit
            a, s = x @ w1.T + b1, SIGMA * w1.norm(dim=1)
            h = (torch.tanh(a.unsqueeze(-1) + s.unsqueeze(-1) * GH_Z) * GH_W).sum(-1)
            return h @ w2.T

        return Box(name, d, smooth, smoothed, exact=exact, surrogate_samples=(10, 100), replay=True,
                   model=lambda: nn.Sequential(nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, d)))  # fmt: skip
    raise ValueError(f"unknown box {name!r}")
