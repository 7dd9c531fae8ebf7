"""How the contract suite (``test_contract.py``) runs one estimator spec on one black box of
``registry.py``: the layer, the output it must return, a seeded gradient, a layer to put in front.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from diffbypass import Bypass

from ._fns import gen
from .registry import EstimatorSpec, FnCase, Problem


def make_layer(spec: EstimatorSpec, case: FnCase, seed: int, x: Tensor, **bypass_kw: Any) -> Bypass:
    """A fresh ``Bypass(case.fn, spec.make(seed, ...))`` sized for inputs like ``x``."""
    in_shape = tuple(x.shape[1:])
    problem = Problem(in_shape, case.out_shape(in_shape), x.dtype, case.classes)
    return Bypass(case.fn, spec.make(seed, problem), **bypass_kw)


def expected_output(case: FnCase, x: Tensor) -> Tensor:
    """``fn(x)`` as the tensor ``Bypass`` must return (same values and dtype)."""
    out = case.fn(x.detach().clone())
    return out if isinstance(out, Tensor) else torch.from_numpy(out)


def gradient(layer: Bypass, x: Tensor, seed: int) -> Tensor:
    """Forward, then backward with a seeded ``grad_output``; returns ``x``'s gradient.

    For an integer-valued fn (no gradient through ``Bypass``) the loss goes on ``layer.predict``,
    the surrogate's differentiable stand-in, after the forward has fitted it.
    """
    xx = x.detach().clone().requires_grad_(True)
    y = layer(xx)
    out = y if y.is_floating_point() else layer.predict(xx)
    v = torch.randn(out.shape, generator=gen(seed), dtype=torch.float64).to(out.dtype)
    out.backward(v)
    assert xx.grad is not None
    return xx.grad


class Affine(nn.Module):
    """A shape-preserving trainable layer to put in front of a Bypass in ``nn.Sequential``."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(1.5, dtype=dtype))
        self.bias = nn.Parameter(torch.tensor(0.25, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight + self.bias
