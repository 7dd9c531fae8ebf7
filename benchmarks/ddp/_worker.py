"""The timed runs of ``python -m benchmarks.ddp`` (a module, so that spawned processes find them)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def _config(method: str) -> Any:
    from lvseg.config import TrainConfig

    return TrainConfig(method=method, data="synthetic", synthetic_slices=48, train_size=None,
                       batch_size=8, iterations=10_000, val_every=10_000, checkpoint_every=10_000)  # fmt: skip


def _worker(rank: int, world: int, port: int, method: str, args: argparse.Namespace, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    from lvseg.train import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(_config(method), Path(tmp) / "run", device="cpu")
        for _ in range(args.warmup):
            trainer.step()
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            trainer.step()
            times.append(time.perf_counter() - start)
        result: dict[str, Any] = {"step_s": statistics.median(times), "steps": times}
        if world > 1:
            sizes = {"unet": sum(p.numel() for p in trainer.unet.parameters())}
            if method == "edpcnn":
                sizes["surrogate"] = sum(p.numel() for p in trainer.model.bypass.estimator.model.parameters())
            for name, size in sizes.items():
                buffer, spent = torch.zeros(size), []
                for _ in range(args.steps):
                    torch.distributed.barrier()
                    start = time.perf_counter()
                    torch.distributed.all_reduce(buffer)
                    spent.append(time.perf_counter() - start)
                result[f"allreduce_{name}_s"] = statistics.median(spent)
                result[f"{name}_parameters"] = size
        trainer._lock.release()
        trainer.close()  # the group and its gloo threads end before the interpreter's exit
    if rank == 0:
        Path(out).write_text(json.dumps(result))
