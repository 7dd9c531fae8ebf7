"""A run's training state: what ``last.pt`` and ``best.pt`` hold, and resuming from ``last.pt``.

``last.pt`` holds everything needed to continue exactly (:func:`last_state`): the model (U-Net,
surrogate, the surrogate's optimiser and noise generator), the U-Net's optimiser, the batch
sampler (its generator, permutation and position), the torch, NumPy and Python RNG states, the
best validation Dice so far, with ``--unlabelled`` the EMA teacher and its sampler
(:mod:`lvseg.teacher`), and with ``--average`` the weight average (:mod:`lvseg.averaging`).
:func:`restore` puts it back into a freshly set-up
:class:`~lvseg.train.Trainer`, which then gives bit-identical weights to an uninterrupted run
(``tests/lv_segmentation/test_train.py``). ``best.pt`` holds the model of the best validation
iteration (:func:`best_state`). Files are written and read by :mod:`lvseg.checkpoint`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lvseg.checkpoint import load_model_state
from lvseg.hooks import read_metrics
from lvseg.rundir import RunDirError, atomic_write_bytes

if TYPE_CHECKING:
    from lvseg.train import Trainer

__all__ = ["best_state", "last_state", "restore"]


def last_state(trainer: Trainer) -> dict[str, Any]:
    """Everything ``last.pt`` holds: the complete state of ``trainer`` after its iteration."""
    return {
        "kind": "last", "iteration": trainer.iteration, "config": trainer.config.to_dict(),
        "model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "sampler": trainer.sampler.state_dict(), "numpy_rng": trainer.rng.bit_generator.state,
        "python_rng": random.getstate(), "torch_rng": torch.get_rng_state(),
        "best_dice": trainer.best_dice, "best_iteration": trainer.best_iteration,
        **({"teacher": trainer.teacher.state_dict()} if trainer.teacher is not None else {}),
        **({"average": trainer.average.state_dict()} if trainer.average is not None else {}),
    }  # fmt: skip


def best_state(trainer: Trainer, dice: float) -> dict[str, Any]:
    """What ``best.pt`` holds: the model at ``trainer``'s iteration, which scored ``dice`` (with
    ``--average`` its U-Net and smoothness penalty are the weight average's)."""
    model = (trainer.model.state_dict() if trainer.average is None
             else trainer.average.model_state(trainer.model))
    return {"kind": "best", "iteration": trainer.iteration, "dice": dice,
            "config": trainer.config.to_dict(), "model": model}


def restore(trainer: Trainer, state: dict[str, Any]) -> int:
    """Put a loaded ``last.pt`` back into a freshly set-up ``trainer``; returns its iteration.

    ``trainer.iteration`` becomes the next iteration to run. Rank 0 also drops from
    ``metrics.jsonl`` what was logged after the checkpoint: it will be logged again.

    Raises:
        CheckpointError: if the model's tensors do not fit
            (:func:`~lvseg.checkpoint.load_model_state`).
        RunDirError: if the rest of the state does not fit the run's config.
    """
    last = trainer.run_dir / "last.pt"
    load_model_state(trainer.model, state, last, trainer.config.to_dict())
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.sampler.load_state_dict(state["sampler"])
        trainer.rng.bit_generator.state = state["numpy_rng"]
        random.setstate(state["python_rng"])
        torch.set_rng_state(state["torch_rng"])
        done = state["iteration"]  # checked by check_training_state
        trainer.iteration = done + 1
        trainer.best_dice, trainer.best_iteration = state["best_dice"], state["best_iteration"]
        if trainer.teacher is not None:
            trainer.teacher.load_state_dict(state["teacher"])
        if trainer.average is not None:
            trainer.average.load_state_dict(state["average"])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as error:
        raise RunDirError(
            f"{last} does not fit this run's config ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]})"
        ) from None
    if trainer.ranks.main:
        _drop_metrics_after(trainer.run_dir / "metrics.jsonl", trainer.iteration)
    return done


def _drop_metrics_after(log: Path, iteration: int) -> None:
    """Keep only the entries of ``log`` before ``iteration`` (rewritten atomically)."""
    if log.is_file():
        kept = [e for e in read_metrics(log) if e.get("iteration", 0) < iteration]
        atomic_write_bytes(log, "".join(json.dumps(e) + "\n" for e in kept).encode())
