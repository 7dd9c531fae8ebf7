"""``lvseg train`` itself (:func:`lvseg.cli.main` with the given arguments), counting the DP.

The study runs ``python -m benchmarks.bypass_vs_es._child train ...`` instead of ``python -m
lvseg.cli train ...``: the same command, plus a count of the DP (``fn``) evaluations of each
training step, written as JSON to the file named by ``$BYPASS_VS_ES_COUNTS``:
``{"items": [...], "library": [...], "cpu": [...], "images": [...]}``, one entry per step.
``items`` is counted here, by a wrapper around the black box's ``fn`` that adds the batch size
of every call (one image through the DP is one evaluation); ``library`` is the difference of
``BlackBox.instances`` (diffbypass's own counter) over the step; ``cpu`` is the process CPU
time of each step (``time.process_time``: less moved by other programs than the wall time that
``metrics.jsonl`` holds). Validation runs outside ``Trainer.step`` and is not counted (it costs
the same for both methods). ``images`` is the number of training images in the step's batch
(what ``TrainingBatches.next`` returned; the last batch of an epoch may be short).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness as H
from lvseg import train
from lvseg.cli import main

COUNTS: dict[str, list[float]] = {"items": [], "library": [], "cpu": [], "images": []}
_step = train.Trainer.step


class Counted:
    """``fn`` with a count of the batch items it was called on."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.items = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.items += len(args[0])
        return self.fn(*args, **kwargs)


def counted_step(self: train.Trainer) -> Any:
    """``Trainer.step``, counting its DP evaluations, its CPU time and its batch's images."""
    box = self.model.bypass.blackbox
    if not isinstance(box.fn, Counted):
        box.fn = Counted(box.fn)
        self.batches.next = _images_counted(self.batches.next)
    items, library, cpu = box.fn.items, box.instances, time.process_time()
    try:
        return _step(self)
    finally:
        COUNTS["cpu"].append(round(time.process_time() - cpu, 5))
        COUNTS["items"].append(box.fn.items - items)
        COUNTS["library"].append(box.instances - library)


def _images_counted(next_batch: Any) -> Any:
    def wrapper(rng: Any) -> Any:
        batch = next_batch(rng)
        COUNTS["images"].append(len(batch[0]))
        return batch

    return wrapper


if __name__ == "__main__":
    train.Trainer.step = counted_step  # type: ignore[method-assign]
    code = main(sys.argv[1:])
    H.atomic_write(Path(os.environ["BYPASS_VS_ES_COUNTS"]), json.dumps(COUNTS))
    raise SystemExit(code)
