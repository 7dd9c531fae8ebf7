"""Training: configuration, data preparation, the loop, exact resume, and the loggers.

The loop (:class:`Trainer`) does not print anything itself: it calls its hooks with one event
dict per training step and per validation. :class:`MetricsLog` (always attached: the run's
``metrics.jsonl``) and :class:`ProgressBar` (tqdm, attached by the command) are such hooks; the
surrogate's agreement reaches them through :meth:`diffbypass.Surrogate.register_fit_hook`.

Every ``checkpoint_every`` iterations ``last.pt`` is written atomically with everything needed to
continue exactly: the model (U-Net, surrogate, the surrogate's optimiser and noise generator),
the U-Net's optimiser, the batch sampler (its generator, permutation and position), and the
torch, NumPy and Python RNG states. ``Trainer(..., resume=True)`` continues from it and gives
bit-identical weights to an uninterrupted run (``tests/lv_segmentation/test_train.py``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lvseg.checkpoint import (
    RunDirError,
    load_checkpoint,
    read_config,
    save_checkpoint,
    write_config,
)
from lvseg.data import PreparedData, load_dataset, preprocess, split_by_patient, telescopic_subsets
from lvseg.metrics import evaluate_batch, summarize
from lvseg.models import UNet
from lvseg.pipeline import (
    EDPCNN,
    METHODS,
    StarConfig,
    jitter_centers,
    make_estimator,
    pixel_loss,
    segment,
)

__all__ = [
    "CROP_SIZE",
    "DEFAULT_ITERATIONS",
    "SPACING_MM",
    "BatchSampler",
    "MetricsLog",
    "PreparedSplits",
    "ProgressBar",
    "TrainConfig",
    "Trainer",
    "build_model",
    "prepare_data",
    "unet_of",
]

Hook = Callable[["Trainer", dict[str, Any]], None]

#: Default training iterations per method: where the validation Dice of ``--train-size 10``
#: runs on the bundled Sunnybrook sample had levelled off (docs/lv_example.md).
DEFAULT_ITERATIONS = {"unet": 200, "unet-dp": 200, "edpcnn": 150, "edpcnn-es": 150}

#: Common pixel size (mm) of the preprocessing, as in ``lvseg.data`` (thesis: ~1.37 mm).
SPACING_MM = 1.37
#: Crop size (pixels) around the LV centre of mass (128 px = 175 mm at 1.37 mm).
CROP_SIZE = 128


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as the run's ``config.json``).

    Defaults are the best we reached for ``--train-size 10`` on two CPU cores in a few minutes
    (``docs/lv_example.md`` explains each choice). Thesis values, where they differ, in brackets.

    Attributes:
        method: ``unet``, ``unet-dp``, ``edpcnn`` or ``edpcnn-es``.
        data: ``sunnybrook``, ``acdc`` or ``synthetic``.
        data_dir: dataset folder (``None``: the bundled Sunnybrook sample; required for acdc).
        train_size: telescopic training subset size (``None``: the whole training split).
        seed: seed of initialisation, batch order, centre jitter and surrogate noise.
        split_seed: seed of the patient split and of the telescopic shuffle.
        iterations: training iterations [20000]; ``None``: :data:`DEFAULT_ITERATIONS` of the
            method.
        batch_size: images per iteration [10].
        lr: Adam learning rate of the U-Net [1e-4].
        val_every: validate (Dice, for the best checkpoint) every this many iterations [50].
        checkpoint_every: write ``last.pt`` every this many iterations.
        unet_channels: U-Net base channels [64].
        unet_depth: U-Net down-samplings [4].
        unet_norm: U-Net normalisation, ``group``, ``batch`` or ``none`` [none].
        star: star pattern and DP settings [N=25, M=65, R=65, delta=1, smoothing ~N/4].
        jitter: training centre jitter, s.d. as a fraction of the object radius [1].
        rotation: training star rotation, uniform in ``±rotation`` radians [0.5].
        sigma: exploration (surrogate) / smoothing (ES) noise scale [1].
        samples: perturbed copies per input [10].
        fit_steps: surrogate optimiser steps per iteration [10].
        surrogate_lr: the surrogate's Adam learning rate.
        surrogate_channels: ``StarSurrogate`` base channels [8].
        synthetic_slices: number of phantoms for ``--data synthetic``.
        fractions: patient shares ``(train, val, test)`` of the split (``None``: 1/3 each for
            sunnybrook, ``(0.8, 0.1, 0.1)`` otherwise).
    """

    method: str
    data: str = "sunnybrook"
    data_dir: str | None = None
    train_size: int | None = 10
    seed: int = 0
    split_seed: int = 0
    iterations: int | None = None
    batch_size: int = 10
    lr: float = 1e-3
    val_every: int = 25
    checkpoint_every: int = 25
    unet_channels: int = 8
    unet_depth: int = 4
    unet_norm: str = "group"
    star: StarConfig = field(default_factory=StarConfig)
    jitter: float = 1.0
    rotation: float = 0.5
    sigma: float = 1.0
    samples: int = 10
    fit_steps: int = 2
    surrogate_lr: float = 1e-3
    surrogate_channels: int = 8
    synthetic_slices: int = 256
    fractions: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.star, dict):
            self.star = StarConfig(**self.star)
        if self.fractions is not None:
            self.fractions = tuple(float(f) for f in self.fractions)  # type: ignore[assignment]
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if self.iterations is None:
            self.iterations = DEFAULT_ITERATIONS[self.method]
        if self.data not in ("sunnybrook", "acdc", "synthetic"):
            raise ValueError(f"data must be sunnybrook, acdc or synthetic; got {self.data!r}")
        ints = {"iterations": 1, "batch_size": 1, "val_every": 1, "checkpoint_every": 1,
                "unet_channels": 1, "unet_depth": 0, "samples": 1, "fit_steps": 1,
                "surrogate_channels": 1, "synthetic_slices": 3, "seed": 0, "split_seed": 0}
        for name, low in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if self.train_size is not None and (
            isinstance(self.train_size, bool) or not isinstance(self.train_size, int)
            or self.train_size < 1
        ):
            raise ValueError(f"train_size must be a positive integer or None; got {self.train_size!r}")
        for name in ("lr", "sigma", "surrogate_lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number; got {value!r}")
        for name in ("jitter", "rotation"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number; got {value!r}")
        if self.method == "edpcnn-es" and self.samples % 2:
            raise ValueError(
                f"samples must be even for edpcnn-es (antithetic ES pairs); got {self.samples}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what ``config.json`` holds)."""
        out = dataclasses.asdict(self)
        out["star"] = self.star.as_dict()
        out["fractions"] = list(self.fractions) if self.fractions is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from elsewhere)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"lvseg_version"})
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PreparedSplits:
    """Preprocessed data and its patient split (``train`` is the telescopic subset)."""

    data: PreparedData
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    patients: dict[str, tuple[str, ...]]
    report: str

    def indices(self, split: str) -> np.ndarray:
        """Item indices of ``"train"``, ``"val"``, ``"test"`` or ``"all"``."""
        if split == "all":
            return np.arange(len(self.data))
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val, test or all; got {split!r}")
        return getattr(self, split)


def prepare_data(config: TrainConfig) -> PreparedSplits:
    """Load, preprocess (1.37 mm, 128 x 128 around the LV) and split the configured dataset.

    Raises:
        FileNotFoundError / ValueError: from the loader (missing or malformed data directory),
            or if ``train_size`` exceeds the training split.
    """
    kwargs: dict[str, Any] = {}
    if config.data == "synthetic":
        kwargs = {"n": config.synthetic_slices, "seed": config.split_seed}
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        raise FileNotFoundError(f"data directory {config.data_dir} does not exist")
    slices, load_report = load_dataset(config.data, config.data_dir, **kwargs)  # type: ignore[arg-type]
    data, prep_report = preprocess(slices, spacing=SPACING_MM, size=CROP_SIZE)
    if len(data) == 0:
        raise ValueError(f"no usable slice in the {config.data} data ({load_report}; {prep_report})")
    fractions = config.fractions
    if fractions is None:
        fractions = (1 / 3, 1 / 3, 1 / 3) if config.data == "sunnybrook" else (0.8, 0.1, 0.1)
    split = split_by_patient(data.patient_ids, fractions, seed=config.split_seed)
    train = split.train
    if config.train_size is not None:
        if config.train_size > len(train):
            raise ValueError(
                f"train_size must be at most the {len(train)} slices of the training split "
                f"(patients {', '.join(split.patients['train'])}); got {config.train_size}"
            )
        train = telescopic_subsets(train, [config.train_size], seed=config.split_seed)[
            config.train_size
        ]
    return PreparedSplits(data, train, split.val, split.test, split.patients,
                          f"{load_report}; {prep_report}")


class BatchSampler:
    """Shuffled epochs over ``n`` items, ``batch_size`` at a time, with a saveable state.

    A batch never spans two epochs; a batch size above ``n`` gives the whole (shuffled) set.

    Example:
        >>> s = BatchSampler(5, 2, seed=0)
        >>> first = [s.next().tolist() for _ in range(3)]
        >>> state = s.state_dict(); a = s.next()
        >>> s.load_state_dict(state); bool((s.next() == a).all())
        True
    """

    def __init__(self, n: int, batch_size: int, *, seed: int) -> None:
        self.n, self.batch_size = int(n), int(batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.order = torch.randperm(self.n, generator=self.generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        """Indices of the next batch (a new shuffle at the start of every epoch)."""
        if self.position >= self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += len(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Generator state, current permutation and position (for exact resume)."""
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])


# --------------------------------------------------------------------------- model
def build_model(config: TrainConfig) -> nn.Module:
    """The trainable model of ``config.method``: a :class:`UNet` or an :class:`EDPCNN`.

    Initialisation and the estimator's noise generator follow ``config.seed``.
    """
    torch.manual_seed(config.seed)
    unet = UNet(base_channels=config.unet_channels, depth=config.unet_depth, norm=config.unet_norm)
    if config.method in ("unet", "unet-dp"):
        return unet
    estimator = make_estimator(
        "surrogate" if config.method == "edpcnn" else "es",
        sigma=config.sigma, samples=config.samples, fit_steps=config.fit_steps,
        lr=config.surrogate_lr, base_channels=config.surrogate_channels,
        generator=torch.Generator().manual_seed(config.seed + 1),
    )  # fmt: skip
    return EDPCNN(unet, config.star, estimator)


def unet_of(model: nn.Module) -> nn.Module:
    """The U-Net inside ``model`` (the model itself for ``unet``/``unet-dp``)."""
    return model.unet if isinstance(model, EDPCNN) else model


# --------------------------------------------------------------------------- loggers
class MetricsLog:
    """Hook appending every event as one JSON line to ``path`` (the run's ``metrics.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __call__(self, trainer: Trainer, event: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")


class ProgressBar:
    """Hook showing a tqdm bar with the live loss, validation Dice and surrogate agreement."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self.kwargs = tqdm_kwargs
        self.bar: Any = None
        self.postfix: dict[str, str] = {}

    def __call__(self, trainer: Trainer, event: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=trainer.config.iterations, initial=trainer.iteration - 1,
                            desc=trainer.config.method, **self.kwargs)
        if event["event"] == "step":
            self.bar.update(1)
            self.postfix["loss"] = f"{event['loss']:.4f}"
            if event.get("agreement") is not None:
                self.postfix["agree"] = f"{event['agreement']:.2f}"
        elif event["event"] == "validation":
            self.postfix["dice"] = f"{event['dice']:.3f}"
            self.postfix["best"] = f"{event['best_dice']:.3f}"
        elif event["event"] == "end":
            self.bar.close()
            return
        self.bar.set_postfix(self.postfix, refresh=False)


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Train one method into a run directory (see the module docstring).

    Args:
        config: the run's configuration; with ``resume=True`` it must equal the stored one
            except for ``iterations`` (which may be raised to train longer).
        run_dir: the run directory; without ``resume`` it must not exist or be empty.
        resume: continue from ``run_dir/last.pt``.
        data: already prepared data (tests reuse it across runs); by default
            :func:`prepare_data`.

    Raises:
        RunDirError: on an existing run without ``resume``, or a missing/foreign one with it.
        CheckpointError: if ``last.pt`` is unreadable.
        FileNotFoundError, ValueError: from :func:`prepare_data` (missing or unusable data).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        data: PreparedSplits | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        checkpoint = self._open_run_dir(config, resume)
        self.config = config
        self.data = data if data is not None else prepare_data(config)
        self.model = build_model(config)
        self.unet = unet_of(self.model)
        self.optimizer = torch.optim.Adam(self.unet.parameters(), lr=config.lr, betas=(0.9, 0.999))
        self.sampler = BatchSampler(len(self.data.train), config.batch_size, seed=config.seed)
        self.rng = np.random.default_rng(config.seed)
        random.seed(config.seed)
        self.iteration = 1  # the next iteration to run (1-based)
        self.best_dice, self.best_iteration = -math.inf, 0
        self._hooks: dict[int, Hook] = {}
        self._next_hook = 0
        self._last_fit: Any = None
        if isinstance(self.model, EDPCNN) and self.model.uses_surrogate:
            self.model.bypass.estimator.register_fit_hook(self._on_fit)
        tensors = self.data.data.to_tensors()
        self.images, self.masks = tensors["images"], tensors["masks"]
        self.centers, self.radii = tensors["centers"], tensors["radii"]
        if checkpoint is not None:
            self._restore(checkpoint)
        self.run_dir.mkdir(parents=True, exist_ok=True)  # only now: the run can start
        # on resume only ``iterations`` may differ from the stored config
        write_config(self.run_dir, {**config.to_dict(), "lvseg_version": "0.1.0"})
        self.add_hook(MetricsLog(self.run_dir / "metrics.jsonl"))

    # ------------------------------------------------------------------ setup
    def _open_run_dir(self, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
        if not resume:
            if self.run_dir.exists() and (not self.run_dir.is_dir() or any(self.run_dir.iterdir())):
                raise RunDirError(
                    f"{self.run_dir} already exists and is not empty; pass --resume to continue "
                    "that run, or choose another --out (nothing was overwritten)"
                )
            return None
        stored = TrainConfig.from_dict(read_config(self.run_dir))
        mine, theirs = config.to_dict(), stored.to_dict()
        mine.pop("iterations"), theirs.pop("iterations")
        differ = sorted(k for k in mine if mine[k] != theirs[k])
        if differ:
            raise RunDirError(
                f"cannot resume {self.run_dir}: options differ from its config.json ("
                + ", ".join(f"{k}: {theirs[k]!r} there, {mine[k]!r} now" for k in differ)
                + "); only --iterations may change"
            )
        last = self.run_dir / "last.pt"
        if not last.is_file():
            raise RunDirError(f"cannot resume {self.run_dir}: it has no last.pt checkpoint yet")
        return load_checkpoint(last)

    def _restore(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.sampler.load_state_dict(state["sampler"])
            self.rng.bit_generator.state = state["numpy_rng"]
            random.setstate(state["python_rng"])
            torch.set_rng_state(state["torch_rng"])
            self.iteration = int(state["iteration"]) + 1
            self.best_dice = float(state["best_dice"])
            self.best_iteration = int(state["best_iteration"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise RunDirError(
                f"{self.run_dir / 'last.pt'} does not fit this run's config ({error})"
            ) from None
        log = self.run_dir / "metrics.jsonl"
        if log.is_file():  # drop what was logged after the checkpoint: it will be redone
            kept = [line for line in log.read_text().splitlines()
                    if line.strip() and json.loads(line).get("iteration", 0) < self.iteration]
            log.write_text("".join(line + "\n" for line in kept))

    def add_hook(self, hook: Hook) -> Callable[[], None]:
        """Call ``hook(trainer, event)`` for every event; returns a function removing it."""
        key = self._next_hook
        self._next_hook += 1
        self._hooks[key] = hook
        return lambda: self._hooks.pop(key, None)

    def _emit(self, event: dict[str, Any]) -> None:
        for hook in list(self._hooks.values()):
            hook(self, event)

    def _on_fit(self, surrogate: Any, stats: Any) -> None:
        self._last_fit = stats

    # ------------------------------------------------------------------ loop
    def step(self) -> dict[str, Any]:
        """One training iteration; returns its ``step`` event."""
        start = time.perf_counter()
        self.model.train()
        idx = self.data.train[self.sampler.next().numpy()]
        images, masks = self.images[idx], self.masks[idx]
        self._last_fit = None
        if isinstance(self.model, EDPCNN):
            cfg = self.config
            centers = jitter_centers(self.centers[idx].numpy(), self.radii[idx].numpy(),
                                     masks.numpy(), cfg.jitter, self.rng)
            angles = self.rng.uniform(-cfg.rotation, cfg.rotation, size=len(idx))
            out = self.model(images, torch.from_numpy(centers), torch.from_numpy(angles).float())
            loss = self.model.loss(out, self.model.true_indices(masks, out.points))
        else:
            loss = pixel_loss(self.model(images), masks)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        event = {"event": "step", "iteration": self.iteration, "loss": float(loss.detach()),
                 "seconds": time.perf_counter() - start}
        if self._last_fit is not None:
            event["agreement"] = self._last_fit.agreement_before
            event["fit_loss"] = self._last_fit.loss_last
        return event

    def validate(self) -> float:
        """Mean Dice on the validation split (true centres, evaluation protocol)."""
        idx = self.data.val
        seg = segment(self.config.method, self.unet, self.images[idx], self.centers[idx],
                      self.config.star)
        rows = evaluate_batch(seg.masks, self.masks[idx], self.data.data.spacing,
                              self.centers[idx], self.config.star.radius)
        return float(summarize(rows)["dice_mean"])

    def fit(self) -> dict[str, Any]:
        """Train up to ``config.iterations``; returns a summary (best Dice and iteration)."""
        cfg = self.config
        start = time.perf_counter()
        while self.iteration <= cfg.iterations:
            self._emit(self.step())
            last = self.iteration == cfg.iterations
            if self.iteration % cfg.val_every == 0 or last:
                self._validation()
            if self.iteration % cfg.checkpoint_every == 0 or last:
                self.save()
            self.iteration += 1
        summary = {"event": "end", "iteration": self.iteration - 1, "best_dice": self.best_dice,
                   "best_iteration": self.best_iteration, "seconds": time.perf_counter() - start}
        self._emit(summary)
        return summary

    def _validation(self) -> None:
        if len(self.data.val) == 0:  # nothing to select on: the best model is the last one
            self.best_iteration = self.iteration
            self._save_best(math.nan)
            return
        dice = self.validate()
        if dice > self.best_dice:
            self.best_dice, self.best_iteration = dice, self.iteration
            self._save_best(dice)
        self._emit({"event": "validation", "iteration": self.iteration, "dice": dice,
                    "best_dice": self.best_dice, "best_iteration": self.best_iteration})

    def _save_best(self, dice: float) -> None:
        save_checkpoint(self.run_dir / "best.pt", {
            "kind": "best", "iteration": self.iteration, "dice": dice,
            "config": self.config.to_dict(), "model": self.model.state_dict(),
        })  # fmt: skip

    def save(self) -> None:
        """Write ``last.pt`` (atomically) with the complete training state."""
        save_checkpoint(self.run_dir / "last.pt", {
            "kind": "last", "iteration": self.iteration, "config": self.config.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(), "numpy_rng": self.rng.bit_generator.state,
            "python_rng": random.getstate(), "torch_rng": torch.get_rng_state(),
            "best_dice": self.best_dice, "best_iteration": self.best_iteration,
        })  # fmt: skip
