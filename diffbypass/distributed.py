r"""What the estimators do under ``torch.distributed`` (DDP, launched by ``torchrun``).

Under an initialised process group of more than one process every rank holds its own
:class:`~diffbypass.Bypass` and sees its own shard of the batch. Without one (or with one
process) nothing here runs and every estimator behaves exactly as before, bit for bit.

* **Noise is independent per rank.** Each draw takes one seed from the estimator's generator
  (whose state is broadcast from rank 0 at the first draw, so it stays the same on every rank)
  and draws the noise from a generator seeded with that seed and the rank. ``samples`` stays
  *per input item*: a rank evaluates ``fn`` at ``S`` perturbations of each item of its shard,
  so the global budget per step is that of one process on the global batch.
* **A Surrogate stays identical on every rank.** Its model, buffers and optimiser state are
  broadcast from rank 0 at its first fit, and every fit step averages the fit gradients over
  the ranks (one all-reduce) before the optimiser step: each step is the step on the union of
  the ranks' fit samples (equal shards).
* :class:`~diffbypass.Gated` averages its probes' inner products (and the fit agreement it
  checks) over the ranks, and :class:`~diffbypass.GuidedES` its history direction, so their
  decisions and state are the same on every rank.
* Telemetry (``stats``, fit hooks) is **per rank**; :func:`reduce_stats` combines one record
  over the ranks.
* The model's own gradients are averaged by DDP as usual. The estimators' parameters are
  trained by the estimators, not by the loss: :func:`prepare_ddp` tells DDP to leave them
  alone; call it before wrapping the model in ``DistributedDataParallel``.

Every rank must run the same number of training forward and backward passes, as DDP already
requires: the collectives above are matched across ranks.

Example:
    >>> import torch
    >>> from diffbypass import Bypass, Surrogate
    >>> from diffbypass.distributed import prepare_ddp
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 3),
    ...                             Bypass(torch.sign, Surrogate(torch.nn.Linear(3, 3))))
    >>> prepare_ddp(model)  # then DistributedDataParallel(model)
    ['1.estimator.model.weight', '1.estimator.model.bias']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["active", "average_gradients", "broadcast_module", "mean", "mean_floats",
           "prepare_ddp", "rank_generator", "reduce_stats", "world"]  # fmt: skip

#: integer telemetry fields that count work, summed over the ranks by :func:`reduce_stats`
SUMMED = frozenset({"samples", "dropped"})

T = TypeVar("T")


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def active() -> bool:
    """Is a process group of more than one process initialised?"""
    return world()[1] > 1


def _device() -> torch.device:
    """Where the collectives' tensors live: the current GPU for NCCL, else the CPU."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean(values: Tensor) -> Tensor:
    """``values`` averaged over the ranks (a new tensor; ``values`` itself without a group)."""
    if not active():
        return values
    buffer = values.detach().to(_device(), copy=True)
    torch.distributed.all_reduce(buffer)
    return (buffer / world()[1]).to(values.device, values.dtype)


def average_gradients(params: Iterable[nn.Parameter], loss: float) -> float:
    """Average the ``.grad`` of ``params`` over the ranks in place (one all-reduce; a missing
    gradient counts as zeros) and return ``loss`` averaged with them (NaN if any rank's was)."""
    if not active():
        return loss
    params = [p for p in params if p.requires_grad]
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    flat = torch.cat([*[g.to(_device(), torch.float64) for g in parts],
                      torch.tensor([loss], dtype=torch.float64, device=_device())])  # fmt: skip
    torch.distributed.all_reduce(flat)
    flat /= world()[1]
    start = 0
    for p in params:
        p.grad = flat[start : start + p.numel()].reshape(p.shape).to(p.device, p.dtype)
        start += p.numel()
    return float(flat[-1])


def broadcast_module(module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Copy rank 0's parameters, buffers and optimiser state to every rank."""
    if not active():
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            buffer = t.detach().to(_device(), copy=True)
            torch.distributed.broadcast(buffer, src=0)
            t.copy_(buffer)
    if optimizer is not None:
        state = [optimizer.state_dict() if world()[0] == 0 else None]
        torch.distributed.broadcast_object_list(state, src=0)
        if world()[0] != 0:
            optimizer.load_state_dict(state[0])


def _splitmix64(value: int) -> int:
    """A 64-bit mixing function (SplitMix64's finaliser): nearby inputs, unrelated outputs."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return value ^ (value >> 31)


def rank_generator(generator: torch.Generator, shared: bool) -> torch.Generator:
    """This rank's generator for one draw: seeded from one draw of ``generator`` (the same on
    every rank) and the rank. ``shared=False`` first broadcasts ``generator``'s state from
    rank 0 (the first draw)."""
    if not shared:
        state = generator.get_state().to(_device())
        torch.distributed.broadcast(state, src=0)
        generator.set_state(state.cpu())
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    rank = world()[0]
    return torch.Generator().manual_seed(_splitmix64(seed ^ _splitmix64(rank)) >> 1)


def reduce_stats(stats: T) -> T:
    """One telemetry record (:class:`~diffbypass.FitStats`, :class:`~diffbypass.ESStats`,
    :class:`~diffbypass.GateStats`) combined over the ranks: the counts ``samples`` and
    ``dropped`` summed, the other numbers averaged, the rest as on this rank. A collective:
    call it on every rank. Without a process group ``stats`` itself."""
    if not dataclasses.is_dataclass(stats) or isinstance(stats, type):
        raise TypeError(f"stats must be a telemetry record (a dataclass); got {type(stats).__name__}")
    if not active():
        return stats
    names = [f.name for f in dataclasses.fields(stats)
             if isinstance(getattr(stats, f.name), (int, float))
             and not isinstance(getattr(stats, f.name), bool)]  # fmt: skip
    size = world()[1]
    totals = mean(torch.tensor([float(getattr(stats, n)) for n in names], dtype=torch.float64)) * size
    out: dict[str, Any] = {}
    for name, total in zip(names, totals.tolist()):
        value = total if name in SUMMED else total / size
        out[name] = round(value) if isinstance(getattr(stats, name), int) else value
    return dataclasses.replace(stats, **out)  # type: ignore[type-var]


def mean_floats(values: Sequence[float]) -> tuple[float, ...]:
    """Plain numbers averaged over the ranks (as given without a group)."""
    if not active():
        return tuple(values)
    return tuple(float(v) for v in mean(torch.tensor(list(values), dtype=torch.float64)))


def prepare_ddp(model: nn.Module) -> list[str]:
    """Tell ``DistributedDataParallel`` to leave the estimators' parameters and buffers alone
    (they are trained by the estimators and kept identical by them, not by the loss); call it
    before wrapping ``model``. Returns the names it excluded."""
    from diffbypass.base import Estimator

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    names: list[str] = []
    for prefix, sub in model.named_modules():
        if isinstance(sub, Estimator):  # a nested estimator's names come twice: kept once
            dot = f"{prefix}." if prefix else ""
            for name, _ in [*sub.named_parameters(), *sub.named_buffers()]:
                if dot + name not in names:
                    names.append(dot + name)
    known = list(getattr(model, "_ddp_params_and_buffers_to_ignore", []))
    model._ddp_params_and_buffers_to_ignore = known + [n for n in names if n not in known]  # type: ignore[assignment]
    return names

