"""Evaluation of a run: Dice, HD, HD95 and ASSD inside the star's square (thesis protocol).

:func:`evaluate_run` follows the thesis protocol (§5.3): the star is centred at the LV's centre
of mass (optionally jittered inside the object, ``center_jitter`` times the object radius, to
test robustness as in thesis fig. 5.4) and every metric is computed inside the square that
tightly holds the star, for every method alike.

``split="all"`` evaluates every usable slice of the data without splitting it by patient, so
any folder works, even one of a single patient. :func:`load_run` loads a run's model (also used
by :mod:`lvseg.predict`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from diffbypass.validation import int_at_least, nonnegative_number, one_of
from lvseg.checkpoint import CheckpointError, load_checkpoint, load_model_state, read_config
from lvseg.config import TrainConfig
from lvseg.data import DATASETS
from lvseg.device import resolve_device
from lvseg.methods import build_model, get_method, unet_of
from lvseg.metrics import evaluate_batch, summarize
from lvseg.jitter import jitter_centers
from lvseg.prepare import load_prepared, prepare_data
from lvseg.segment import Segmentation, segment

__all__ = ["LoadedRun", "evaluate_run", "load_run"]


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its config, the model (eval mode) and which checkpoint was loaded."""

    config: TrainConfig
    model: nn.Module
    checkpoint: str
    iteration: int

    @property
    def unet(self) -> nn.Module:
        """The run's U-Net (all methods predict from it)."""
        return unet_of(self.model)


def load_run(
    run_dir: str | os.PathLike[str], checkpoint: str = "best", *, device: str = "cpu",
    delta: int | None = None,
) -> LoadedRun:
    """Load ``run_dir/<checkpoint>.pt`` (``best``, falling back to ``last``) into its model.

    The model is put on ``device`` (:func:`~lvseg.device.resolve_device`: ``auto``, ``cpu`` or
    ``cuda``), in eval mode. ``delta`` replaces the DP's smoothness for prediction (``None``:
    the run's; the weights do not depend on it): see ``lvseg evaluate --help``.

    Raises:
        RunDirError: if ``run_dir`` is not a run directory.
        CheckpointError: if the checkpoint is missing, corrupt, or does not fit the config.
    """
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(read_config(run_dir), source=str(run_dir / "config.json"))
    if delta is not None:  # checked by StarConfig (StarDP)
        config = dataclasses.replace(config, star=dataclasses.replace(config.star, delta=delta))
    path = run_dir / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists():
        path = run_dir / "last.pt"
    if not path.exists():
        raise CheckpointError(
            f"{run_dir} has no checkpoint yet ({checkpoint}.pt missing); train it first"
        )
    state = load_checkpoint(path)
    model = build_model(config)
    load_model_state(model, state, path, config.to_dict())
    model.to(resolve_device(device)).eval()
    return LoadedRun(config, model, path.name, int(state.get("iteration", 0)))


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    center_jitter: float = 0.0,
    seed: int = 0,
    figures_dir: str | os.PathLike[str] | None = None,
    max_figures: int | None = 12,
    method: str | None = None,
    device: str = "cpu",
    delta: int | None = None,
) -> dict[str, Any]:
    """Evaluate a run's best checkpoint; returns the summary with one row per image.

    Args:
        run_dir: the run directory.
        data: dataset name (default: the run's); another dataset is split with the run's seeds.
        data_dir: its folder (default: the run's when ``data`` is the run's dataset).
        split: ``"val"``, ``"test"`` or ``"all"`` (every usable slice, training ones included).
        center_jitter: s.d. of the star-centre jitter as a fraction of the object radius
            (0: the centre of mass), truncated to the object.
        seed: seed of the jitter.
        figures_dir: write an overlay PNG per image there (at most ``max_figures``).
        method: evaluate a ``unet`` run as ``unet-dp`` (or back): the pixel-trained methods share
            their training, only the prediction differs.
        device: where the U-Net runs (``auto``, ``cpu`` or ``cuda``); the DP runs on the CPU.
        delta: the DP's smoothness for prediction (``None``: the run's); see :func:`load_run`.

    Returns:
        ``{"method", "checkpoint", "iteration", "data", "data_dir" (the folder read, absolute;
        ``None`` for generated data), "split", "center_jitter", "delta", "n",
        "dice", "dice_std", "hd_mm", "hd_std", "hd95_mm", "hd95_std", "assd_mm", "assd_std",
        "n_undefined", "per_image": [{"index", "source", "patient_id", "center", "dice", "hd_mm",
        "hd95_mm", "assd_mm"}, ...]}`` (undefined distances are ``None``).
    """
    nonnegative_number("center_jitter", center_jitter)
    one_of("split", split, ("val", "test", "all"))
    if max_figures is not None:
        int_at_least("max_figures", max_figures, 0)
    run = load_run(run_dir, device=device, delta=delta)
    config = run.config
    if method is not None and method != config.method:
        if get_method(method).end_to_end or get_method(config.method).end_to_end:
            raise ValueError(
                f"method can only switch between unet and unet-dp (same training); the run "
                f"was trained with {config.method!r}, got {method!r}"
            )
        config = dataclasses.replace(config, method=method)
    # the evaluation data do not depend on the telescopic training subset
    if data is not None and data != config.data:
        config = dataclasses.replace(config, data=data, data_dir=data_dir, train_size=None)
    else:
        config = dataclasses.replace(config, data_dir=data_dir or config.data_dir, train_size=None)
    if split == "all":  # every usable slice: no patient split, so any folder works
        data_all, _ = load_prepared(config)
        data_all, idx = data_all, np.arange(len(data_all))
    else:
        prepared = prepare_data(config)
        data_all, idx = prepared.data, prepared.indices(split)
    if len(idx) == 0:
        raise ValueError(f"the {split} split of {config.data} is empty; use --split all")
    sub = data_all.subset(idx)
    tensors = sub.to_tensors()
    centers = jitter_centers(sub.centers, sub.radii, sub.masks, center_jitter,
                             np.random.default_rng(seed))
    centers_t = torch.from_numpy(centers)
    seg = segment(config.method, run.unet, tensors["images"], centers_t, config.star)
    rows = evaluate_batch(seg.masks, tensors["masks"], sub.spacing, centers, config.star.radius)
    summary = summarize(rows)
    per_image = [
        {"index": int(i), "source": sub.sources[k], "patient_id": sub.patient_ids[k],
         "center": [float(centers[k, 0]), float(centers[k, 1])], "dice": row["dice"],
         "hd_mm": _finite(row["hd"]), "hd95_mm": _finite(row["hd95"]),
         "assd_mm": _finite(row["assd"])}
        for k, (i, row) in enumerate(zip(idx, rows))
    ]  # fmt: skip
    if figures_dir is not None:
        _write_figures(Path(figures_dir), config, sub, seg, per_image, max_figures, centers)
    return {
        "method": config.method, "run": str(run_dir), "checkpoint": run.checkpoint,
        "iteration": run.iteration, "data": config.data,
        "data_dir": DATASETS[config.data].location(config.data_dir), "split": split,
        "center_jitter": float(center_jitter), "delta": config.star.delta, "n": summary["n"],
        "dice": summary["dice_mean"], "dice_std": summary["dice_std"],
        "hd_mm": summary["hd_mean"], "hd_std": summary["hd_std"],
        "hd95_mm": summary["hd95_mean"], "hd95_std": summary["hd95_std"],
        "assd_mm": summary["assd_mean"], "assd_std": summary["assd_std"],
        "n_undefined": summary["n_undefined"], "per_image": per_image,
    }  # fmt: skip


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _write_figures(
    folder: Path, config: TrainConfig, sub: Any, seg: Segmentation, rows: list[dict[str, Any]],
    max_figures: int | None, centers: np.ndarray,
) -> None:
    from lvseg.figures import pipeline_figure

    folder.mkdir(parents=True, exist_ok=True)
    count = len(rows) if max_figures is None else min(max_figures, len(rows))
    for k in range(count):
        row = rows[k]
        name = Path(row["source"].split("#")[0]).stem.replace(":", "_").replace("=", "")
        hd = "n/a" if row["hd_mm"] is None else f"{row['hd_mm']:.1f} mm"
        title = f"{config.method} | {row['patient_id']} {name} | Dice {row['dice']:.3f}, HD {hd}"
        pipeline_figure(
            folder / f"{k:03d}_{row['patient_id']}_{name}.png", image=sub.images[k, 0],
            true_mask=sub.masks[k], seg=seg, k=k, star=config.star, center=centers[k],
            title=title,
        )  # fmt: skip
