"""Running a surrogate's own work on its thread count (:attr:`Surrogate.threads
<diffbypass.Surrogate>`): a context for the fit and the VJP, and an autograd function whose
forward *and* backward run on it, for :meth:`Surrogate.predict <diffbypass.Surrogate.predict>`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

@contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` (``None``: unchanged) inside, restored after."""
    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ThreadedPredict(torch.autograd.Function):
    """``predict(x)`` whose forward *and* backward run on ``threads`` (first-order only)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, predict: Callable[[Tensor], Tensor], threads: int) -> Tensor:
        with torch.enable_grad(), num_threads(threads):
            xx = x.detach().requires_grad_(True)
            out = predict(xx)
        ctx.graph, ctx.threads = (xx, out), threads
        return out.detach()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        xx, out = ctx.graph
        with num_threads(ctx.threads):
            (grad_x,) = torch.autograd.grad(out, xx, grad)
        return grad_x, None, None
