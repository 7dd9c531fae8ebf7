"""The training loop: :class:`Trainer`, with hooks, exact resume and safe interruption.

Every ``checkpoint_every`` iterations ``last.pt`` is written atomically with everything needed to
continue exactly (:mod:`lvseg.train_state` says what it holds); ``Trainer(..., resume=True)``
continues from it and gives bit-identical weights to an uninterrupted run
(``tests/lv_segmentation/test_train.py``).

One process trains a run directory at a time (:class:`~lvseg.rundir.RunLock`). Ctrl-C
(SIGINT) finishes the current iteration, writes ``last.pt`` there and raises
:class:`~lvseg.interrupt.TrainingInterrupted`; resuming continues exactly. A NaN/inf loss stops
training with :class:`TrainingDiverged` before the step, so no checkpoint holds NaN weights. A
run directory that has no checkpoint yet (only ``config.json``, ``metrics.jsonl`` and the lock)
may be started afresh; links to files outside it are refused (:func:`~lvseg.rundir.refuse_links`).
Under ``torchrun --nproc-per-node N`` the same loop trains on N processes
(:mod:`lvseg.distributed`).
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from diffbypass.hooks import Hooks

from lvseg.averaging import WeightAverage
from lvseg.batch import TrainingBatches
from lvseg.checkpoint import save_checkpoint
from lvseg.rundir import CONFIG_NAME, RunLock, refuse_links, write_config
from lvseg.config import TrainConfig
from lvseg.device import resolve_device
from lvseg.hooks import Hook, MetricsLog
from lvseg.distributed import Ranks
from lvseg.interrupt import StopRequest, TrainingDiverged, TrainingInterrupted, stop_on_sigint
from lvseg.methods import build_model, get_method, param_groups, star_of, unet_of
from lvseg.negatives import prepare_training
from lvseg.prepare import PreparedSplits
from lvseg.runs import open_run
from lvseg.sampler import BatchSampler
from lvseg.score import Scores, score
from lvseg.teacher import MeanTeacher
from lvseg.train_centres import training_centres
from lvseg.train_state import best_state, last_state, restore

__all__ = ["Trainer", "TrainingDiverged"]  # defined beside TrainingInterrupted (lvseg.interrupt)


class Trainer:
    """Train one method into a run directory (see the module docstring).

    Args:
        config: the run's configuration; with ``resume=True`` it must equal the stored one
            except for ``iterations`` (which may be raised to train longer, never below the
            iterations already done).
        run_dir: the run directory; without ``resume`` it must not exist or be empty.
        resume: continue from ``run_dir/last.pt``.
        data: already prepared data (tests reuse it across runs); by default
            :func:`~lvseg.negatives.prepare_training` (``--negatives``).
        device: where the U-Net and the surrogate train (``auto``, ``cpu`` or ``cuda``; not part
            of the run's config: a run resumes on any device). The DP runs on the CPU.

    Raises:
        RunDirError: on an existing run without ``resume``, a missing/foreign one with it, a run
            another process is training, or ``iterations`` below the finished iteration.
        CheckpointError: if ``last.pt`` is unreadable or does not fit the config.
        FileNotFoundError, ValueError: from data preparation or the model's constructors.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        data: PreparedSplits | None = None,
        device: str = "cpu",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.config = config
        self.method = get_method(config.method)
        self._lock = RunLock(self.run_dir)
        self._saved = 0  # the iteration last.pt holds (0: none)
        self.ranks = Ranks(resolve_device(device))  # one process unless under torchrun
        self.device = self.ranks.device
        try:
            refuse_links(self.run_dir)  # never append or write through a planted link
            locked = (self.run_dir / CONFIG_NAME).is_file()
            if locked and self.ranks.main:  # a run: lock it before reading
                self._lock.acquire()
            # rank 0 checks a fresh run's directory (and may already have started it)
            checkpoint = open_run(self.run_dir, config, resume) if resume or self.ranks.main else None
            self.model = build_model(config).to(self.device)  # the constructors check options
            self.data = data if data is not None else prepare_training(config)
            self._setup(checkpoint)
            self.net = self.ranks.wrap(self.model)
            self.run_dir.mkdir(parents=True, exist_ok=True)  # only now: the run can start
            if not self.ranks.main:  # rank 0 owns the run directory
                return
            if not locked:
                self._lock.acquire()
            if not resume:  # a run that never saved a checkpoint starts afresh
                (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)
            # on resume only ``iterations`` may differ from the stored config
            write_config(self.run_dir, {**config.to_dict(), "lvseg_version": "0.1.0"})
            self.add_hook(MetricsLog(self.run_dir / "metrics.jsonl"))  # rank 0's: global loss
        except BaseException:
            self._lock.release()
            self.close()
            raise

    # ------------------------------------------------------------------ setup
    def _setup(self, checkpoint: dict[str, Any] | None) -> None:
        config = self.config
        self.unet = unet_of(self.model)
        self.optimizer = torch.optim.Adam(param_groups(self.model, config), lr=config.lr,
                                          betas=(0.9, 0.999))
        self.sampler = BatchSampler(len(self.data.train), config.batch_size, seed=config.seed)
        self.rng = np.random.default_rng(config.seed)
        random.seed(config.seed)
        self.iteration = 1  # the next iteration to run (1-based)
        self.best_dice, self.best_iteration = -math.inf, 0
        self._hooks = Hooks()
        self._stop, self.stopping = StopRequest(), False  # Ctrl-C: asked here / on some rank
        self._last_fit: Any = None
        if self.method.report is not None:  # the method says what its estimator reports
            self.model.bypass.estimator.register_fit_hook(self._on_fit)
        tensors = self.data.data.to_tensors()
        self.images, self.masks = tensors["images"], tensors["masks"]
        self.centers = tensors["centers"]
        self.teacher = MeanTeacher(self.model, config, self.data.unlabelled,
                                   end_to_end=self.method.end_to_end) if config.unlabelled else None
        self.average = (WeightAverage(self.model, config.average, warmup=True)
                        if config.average else None)  # --average (lvseg.averaging)
        self.predicted = None  # --centres: the locator's centres of the training images
        if config.centres is not None and self.method.end_to_end:
            self.predicted = training_centres(config.centres, tensors, self.data.train,
                                              device=torch.device(self.device).type)
        self.batches = TrainingBatches(tensors, self.data.train, self.sampler, config, self.ranks,
                                       end_to_end=self.method.end_to_end, predicted=self.predicted)
        if checkpoint is not None:
            self._saved = restore(self, checkpoint)  # lvseg.train_state

    def close(self) -> None:
        """End the torchrun process group the trainer started and drop its DDP wrapper
        (:meth:`Ranks.close <lvseg.distributed.Ranks.close>`; nothing on one process). Call it
        on every rank when no collective is left, after :meth:`fit` (``lvseg train`` does); a
        constructor that raises has already called it."""
        if hasattr(self, "net"):
            self.net = self.model
        self.ranks.close()

    def add_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(trainer, event)`` for every event; ``remove()`` the handle to detach it."""
        return self._hooks.add(hook)

    def _emit(self, event: dict[str, Any]) -> None:
        self._hooks(self, event)

    def _on_fit(self, surrogate: Any, stats: Any) -> None:
        self._last_fit = stats

    # ------------------------------------------------------------------ loop
    def step(self) -> dict[str, Any]:
        """One training iteration; returns its ``step`` event."""
        start = time.perf_counter()
        self.model.train()
        batch = self.batches.next(self.rng)  # this rank's share, with its stars (lvseg.batch)
        self._last_fit = None
        try:
            if self.teacher is None:
                loss = self.method.loss(self.net, *batch)
            else:  # unlabelled images with the teacher's targets (lvseg.teacher)
                extra = self.teacher.batch(self.images, self.centers, self.iteration, self.rng,
                                           self.ranks, self.device)
                loss = self.method.semi_loss(self.net, *batch, extra)
        except FloatingPointError as error:  # NaN/inf before the DP (lvseg.edpcnn.EDPCNN)
            raise self._diverged(str(error)) from None
        value, self.stopping = self.ranks.agree(loss, self._stop.requested)  # over the ranks
        if not math.isfinite(value):  # checked before the step: the weights stay good
            raise self._diverged(f"the loss is {value}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.teacher is not None:
            self.teacher.update(self.model, self.iteration)
        if self.average is not None:
            self.average.update(self.model, self.iteration)
        event = {"event": "step", "iteration": self.iteration, "loss": value,
                 "seconds": time.perf_counter() - start}
        if self._last_fit is not None:
            event.update(self.method.report(self._last_fit))
        return event

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = (f"{self.run_dir}/last.pt holds iteration {self._saved}, the last good checkpoint"
                if self._saved else "no checkpoint was saved yet: run the command again with "
                "other options to start the run afresh")
        return TrainingDiverged(
            f"training diverged at iteration {self.iteration}: {what}; stopped without saving "
            f"it ({kept}). Lower --lr (now {self.config.lr:g}) or check the data"
        )

    def validate(self) -> Scores:
        """The scores on the validation split (true centres, evaluation protocol; their
        ``mean_dice`` selects ``best.pt``) of the model inference uses (:attr:`inference_unet`)."""
        idx = self.data.val
        return score(self.method, self.inference_unet, self.images[idx], self.masks[idx],
                     self.centers[idx], self.star)

    @property
    def inference_unet(self) -> nn.Module:
        """The U-Net that validation and ``best.pt`` take: the weight average with
        ``--average``, the trained U-Net otherwise."""
        return self.unet if self.average is None else self.average.unet

    @property
    def star(self) -> Any:
        """The star and DP settings inference uses now: the config's, with the smoothness
        penalty learned so far if the run learns it (:func:`~lvseg.methods.star_of`; the
        average's with ``--average``)."""
        if self.average is not None:
            return self.average.star(self.config.star)
        return star_of(self.model, self.config.star)

    def fit(self) -> dict[str, Any]:
        """Train up to ``config.iterations``; returns a summary (best Dice and iteration).

        Raises:
            TrainingInterrupted: on Ctrl-C, after writing ``last.pt`` at the last finished
                iteration.
            TrainingDiverged: when the loss or the U-Net's output becomes NaN/inf, before the
                optimiser step: nothing of that iteration is saved, ``last.pt`` keeps the last
                good checkpoint.
        """
        cfg = self.config
        start = time.perf_counter()
        try:
            # under torchrun Ctrl-C reaches every process, from the terminal and from torchrun:
            # a repeated one must not interrupt a rank in the middle of a collective
            with stop_on_sigint(repeat=self.ranks.size > 1) as self._stop:
                while self.iteration <= cfg.iterations:
                    self._emit(self.step())
                    if self.ranks.size == 1:  # a Ctrl-C during this iteration stops after it
                        self.stopping = self._stop.requested  # (ranks agree in the next step)
                    last = self.iteration == cfg.iterations
                    if (self.iteration % cfg.val_every == 0 or last) and self.ranks.main:
                        self._validation()
                    if self.iteration % cfg.checkpoint_every == 0 or last or self.stopping:
                        self.save()
                    if self.stopping:
                        raise TrainingInterrupted(self.run_dir, self.iteration)
                    self.iteration += 1
        finally:
            self._stop = StopRequest()
            self._lock.release()
        summary = {"event": "end", "iteration": self.iteration - 1, "best_dice": self.best_dice,
                   "best_iteration": self.best_iteration, "seconds": time.perf_counter() - start}
        self._emit(summary)
        return summary

    def _validation(self) -> None:
        if len(self.data.val) == 0:  # nothing to select on: the best model is the last one
            self.best_iteration = self.iteration
            self._save_best(math.nan)
            return
        scores = self.validate()
        dice = scores.mean_dice
        if dice > self.best_dice:
            self.best_dice, self.best_iteration = dice, self.iteration
            self._save_best(dice)
        event = {"event": "validation", "iteration": self.iteration, "dice": dice,
                 "best_dice": self.best_dice, "best_iteration": self.best_iteration}
        if scores.at_rim is not None:  # validation images whose contour fills the star
            event["at_rim"] = scores.at_rim
        if self.config.learn_smoothness:
            event["smoothness"] = self.star.smoothness
        self._emit(event)

    def _save_best(self, dice: float) -> None:
        save_checkpoint(self.run_dir / "best.pt", best_state(self, dice))

    def save(self) -> None:
        """Write ``last.pt`` (atomically) with the complete training state; under torchrun
        rank 0 writes it and every rank waits until it is written."""
        if not self.ranks.main:
            self.ranks.barrier()
            return
        save_checkpoint(self.run_dir / "last.pt", last_state(self))
        self._saved = self.iteration
        self.ranks.barrier()

