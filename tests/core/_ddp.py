"""Runs of a small model + Bypass on 1 process or 2 gloo processes, for test_distributed.py.

At module level so that ``torch.multiprocessing.spawn`` can pickle the worker (a spawned process
imports this module by name). Every run returns plain tensors, saved per rank to a file.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

import torch
from torch import Tensor, nn

from diffbypass import ES, Bypass, FiniteDifference, Gated, GuidedES, StraightThrough, Surrogate
from diffbypass import FitStats
from diffbypass.distributed import prepare_ddp, reduce_stats

#: the global batch every run trains on (10 items, so 5 per rank with 2 ranks)
BATCH = 10
STEPS = 3


def data() -> Tensor:
    return torch.randn(BATCH, 4, generator=torch.Generator().manual_seed(1))


def _model(estimator: nn.Module, fn: Callable[[Tensor], Tensor]) -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 3), Bypass(fn, estimator))


def _rounded(z: Tensor) -> Tensor:
    return (2 * z).round() / 2


def _cubic(z: Tensor) -> Tensor:
    return z**3 - z


MAKERS: dict[str, Callable[[], nn.Sequential]] = {
    "surrogate": lambda: _model(Surrogate(nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)),
                                          sigma=0.3, samples=4, fit_steps=2, lr=1e-2), _rounded),
    "surrogate_small_sigma": lambda: _model(Surrogate(nn.Linear(3, 3), sigma=1e-4, samples=4,
                                                      fit_steps=2, lr=1e-2), _cubic),
    "finite_difference": lambda: _model(FiniteDifference(eps=1e-2), _cubic),
    "straight_through": lambda: _model(StraightThrough(), _rounded),
    "es": lambda: _model(ES(sigma=0.1, samples=8), _cubic),
    "gated": lambda: _model(Gated(Surrogate(nn.Linear(3, 3), sigma=0.3, samples=4, fit_steps=1),
                                  every=1, min_agreement=0.0), _cubic),
    "guided_es": lambda: _model(GuidedES(Surrogate(nn.Linear(3, 3), sigma=0.3, samples=4, fit_steps=1),
                                         sigma=0.3, samples=4, history=2), _cubic),
}  # fmt: skip


def train(kind: str, rank: int, world: int) -> dict[str, Any]:
    """``STEPS`` SGD steps of ``MAKERS[kind]`` on this rank's shard of :func:`data`.

    Every rank seeds its RNG with its rank: the ranks start from different weights and noise
    generators, which the library (surrogates, noise) and DDP (the model) must make the same.
    """
    torch.manual_seed(rank)
    model = MAKERS[kind]()
    net = model
    if world > 1:
        prepare_ddp(model)
        net = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model[0].parameters(), lr=0.1)
    x = data().chunk(world)[rank]
    for _ in range(STEPS):
        opt.zero_grad()
        net(x).pow(2).sum(1).mean().backward()
        opt.step()
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if isinstance(v, Tensor)}
    est = model[1].estimator
    state["generator"] = est.sampler.generator.get_state() if hasattr(est, "sampler") else torch.zeros(0)
    if isinstance(est, Surrogate):
        moments = [s["exp_avg"] for s in est.optimizer.state.values()]
        state["adam"] = torch.cat([m.flatten() for m in moments])
    if isinstance(est, Gated):  # the gate's running averages decide its trust
        state["gate"] = torch.tensor([*est.get_extra_state()["avg"], est.fidelity])
    if isinstance(est, GuidedES):  # the history directions span the guide subspace
        state["past"] = torch.stack(est.get_extra_state()["past"])
    if hasattr(est, "sampler"):
        state["noise"] = est.sampler.noise(torch.zeros(2, 3))
    return state


def es_gradient(rank: int, world: int) -> dict[str, Any]:
    """The gradient of a linear layer's weight through ES on a linear ``fn`` (DDP-averaged)."""
    torch.manual_seed(rank)
    a = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 0.0, -1.0]])
    model = _model(ES(sigma=0.1, samples=2000), lambda z: z @ a.T)
    net = model
    if world > 1:
        prepare_ddp(model)
        net = nn.parallel.DistributedDataParallel(model)
    x = (data() + 1).chunk(world)[rank]
    net(x).sum(1).mean().backward()
    return {"grad": model[0].weight.grad.clone(), "a": a}


def everything(rank: int, world: int) -> dict[str, Any]:
    """Every run above, in one process group (one start-up for the whole test file)."""
    runs = {kind: train(kind, rank, world) for kind in MAKERS}
    runs["es_gradient"] = es_gradient(rank, world)
    record = FitStats(loss_first=float(rank), loss_last=1.0, agreement_before=0.5 + rank,
                      agreement_after=None, metric="r2", samples=10 + rank, dropped=rank, steps=2)
    runs["reduced"] = reduce_stats(record).as_dict()
    return runs


def _worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        torch.save(everything(rank, world), os.path.join(out, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(world: int, out: str) -> list[dict[str, Any]]:
    """:func:`everything` on ``world`` gloo processes; their results by rank."""
    torch.multiprocessing.spawn(_worker, (world, free_port(), out), nprocs=world)
    return [torch.load(os.path.join(out, f"rank{r}.pt"), weights_only=True) for r in range(world)]
