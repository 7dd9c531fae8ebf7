"""``lvseg train`` on several processes: ``torchrun --nproc-per-node N -m lvseg.cli train ...``.

torchrun starts N copies of the command and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:class:`Ranks` reads them, starts the process group (gloo on the CPU, NCCL on CUDA, one GPU per
process: ``cuda:LOCAL_RANK``) and gives the trainer what it needs:

* every rank draws the same global batch (``--batch-size`` stays the global batch) and its
  jitter, then keeps its slice (:meth:`Ranks.shard`);
* the model is wrapped in ``DistributedDataParallel`` (:meth:`Ranks.wrap`), with the
  estimators' own state left to :mod:`diffbypass.distributed`;
* each step, one all-reduce gives every rank the global loss and whether any rank was asked to
  stop (Ctrl-C), so all ranks diverge, stop and save at the same iteration (:meth:`Ranks.agree`);
* rank 0 alone owns the run directory: it locks it, validates, writes the metrics and the
  checkpoints (atomically); the others wait at a barrier after each save. On ``--resume`` every
  rank loads the same ``last.pt``;
* when training is over, every rank ends the group it started and drops its DDP model
  (:meth:`Ranks.close`; ``lvseg train`` does both on every way out) before the interpreter
  exits. A gloo group left to the interpreter's shutdown now and then aborted a rank there,
  natively ("terminate called without an active exception", from one of the group's threads,
  after ``main`` had returned).

Without torchrun (``WORLD_SIZE`` unset or 1) all of this is a no-op: one process, rank 0 of 1.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from diffbypass import distributed

__all__ = ["Ranks"]


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that also answers the wrapped model's attributes (``model.loss``, ``true_indices``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


class Ranks:
    """This process's place among torchrun's processes.

    Args:
        device: the device ``--device`` chose; under torchrun with CUDA, each process takes
            ``cuda:LOCAL_RANK``.

    Attributes:
        rank, size: this process's rank and the number of processes.
        device: where this process trains.
    """

    def __init__(self, device: torch.device) -> None:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        self.device = device
        if size > 1 and device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        self._started = size > 1 and not torch.distributed.is_initialized()
        if self._started:  # a group the caller started is the caller's to end
            # imported after the group starts (torch.optim does it at its first optimiser),
            # torch._dynamo keeps the group's native threads alive to the interpreter's exit
            import torch._dynamo as _dynamo  # noqa: F401

            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.rank, self.size = distributed.world()

    def close(self) -> None:
        """End the process group this object started (nothing if it started none); again: nothing.

        Call it on every rank once no collective is left, before the process exits, and drop
        the model :meth:`wrap` returned: the group's native threads end with the last of them,
        and must not outlive the interpreter. :attr:`rank` and :attr:`size` stay.
        """
        if self._started and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        self._started = False

    @property
    def main(self) -> bool:
        """Is this rank 0, the one that owns the run directory?"""
        return self.rank == 0

    def shard(self, items: Tensor) -> Tensor:
        """This rank's slice of the global batch ``items`` (first dimension)."""
        if self.size == 1:
            return items
        if len(items) < self.size:
            raise ValueError(
                f"--batch-size must be at least the number of processes ({self.size}) so that "
                f"every process gets an item; got a batch of {len(items)}"
            )
        return items.tensor_split(self.size)[self.rank]

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (itself with one process)."""
        if self.size == 1:
            return model
        distributed.prepare_ddp(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return _DDP(model, device_ids=ids)

    def agree(self, loss: Tensor, stop: bool) -> tuple[float, bool]:
        """The loss averaged over the ranks, and whether any rank was asked to stop."""
        if self.size == 1:
            return float(loss.detach()), stop
        both = distributed.mean(torch.tensor([float(loss.detach()), float(stop)],
                                             dtype=torch.float64))  # fmt: skip
        return float(both[0]), bool(both[1] > 0)

    def barrier(self) -> None:
        """Wait until every rank is here."""
        if self.size > 1:
            torch.distributed.barrier()
