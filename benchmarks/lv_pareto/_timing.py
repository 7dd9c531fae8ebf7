"""The cost pass of ``lv_pareto`` (``--measure``): interleaved ``Trainer.step()`` seconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness as h


def step_seconds(configs: dict[str, Any], warmup: int, repeats: int) -> dict[str, Any]:
    """Seconds per ``Trainer.step()`` of each named ``TrainConfig``, one thread: the trainers
    step in turn (so a change of load falls on all alike), ``warmup`` rounds left out, then the
    median and spread of ``repeats`` (:func:`benchmarks._harness.summary`)."""
    import torch

    from lvseg.train import Trainer

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="lv_pareto_") as tmp:
        trainers = {n: Trainer(c, Path(tmp) / str(i)) for i, (n, c) in enumerate(configs.items())}
        times: dict[str, list[float]] = {n: [] for n in trainers}
        load = h.Load()
        for it in range(warmup + repeats):
            for name, trainer in trainers.items():
                t0 = time.perf_counter()
                trainer.step()
                if it >= warmup:
                    times[name].append(time.perf_counter() - t0)
    return {"step_s": {n: h.summary(t, digits=5) for n, t in times.items()},
            "warmup": warmup, "repeats": repeats, "load_average_start_end": str(load)}
