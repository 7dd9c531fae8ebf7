"""Running a surrogate's own work on its thread count (:attr:`Surrogate.threads
<diffbypass.Surrogate>`): the rule of ``threads="auto"``, a context for the fit and the VJP, and
an autograd function whose forward *and* backward run on it, for :meth:`Surrogate.predict
<diffbypass.Surrogate.predict>`.

Why ``"auto"``: torch's OpenMP threads spin while they wait for work (``OMP_WAIT_POLICY`` is
active by default). For a small network each operation is too short to share, and on a busy
machine the spinning threads compete with the other processes for the cores, so a small
surrogate can run many times slower on several threads than on one
(``benchmarks/surrogate_threads/README.md`` measures it). Large surrogates still get the caller's threads.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Union

import torch
from torch import Tensor, nn

from diffbypass.validation import int_at_least

#: ``threads="auto"`` runs a surrogate pass on one thread when its parameters times the rows of
#: its batch (the multiply-adds of an MLP) are at most this; above it, the caller's setting.
SMALL_WORK = 2**25

ThreadsSpec = Union[int, None, str]


def threads_spec(value: ThreadsSpec) -> ThreadsSpec:
    """The checked ``threads`` argument: ``"auto"``, ``None`` or an integer ``>= 1``."""
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        raise ValueError(f"threads must be 'auto', None or an integer >= 1; got {value!r}")
    return int_at_least("threads", value, 1)


def threads_for(spec: ThreadsSpec, model: nn.Module, rows: int) -> int | None:
    """The thread count for a pass of ``model`` over ``rows`` inputs (``None``: the caller's)."""
    if spec != "auto":
        return spec  # type: ignore[return-value]
    work = rows * sum(p.numel() for p in model.parameters())
    return 1 if work <= SMALL_WORK else None


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
