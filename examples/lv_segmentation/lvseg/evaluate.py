"""Evaluation of a run: Dice, HD, HD95 and ASSD inside the star's square (thesis protocol).

:func:`evaluate_run` follows the thesis protocol (§5.3): the star is centred at the LV's centre
of mass (optionally jittered inside the object, ``center_jitter`` times the object radius, to
test robustness as in thesis fig. 5.4) and every metric is computed inside the square that
tightly holds the star, for every method alike.

``split="all"`` evaluates every usable slice of the data without splitting it by patient, so
any folder works, even one of a single patient. The run's model is loaded by
:func:`lvseg.runs.load_run`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lvseg.config import TrainConfig
from lvseg.data import DATASETS, SCHEMES
from lvseg.data.acdc import subfolder_hint
from lvseg.rundir import atomic_write_bytes
from lvseg.data.splits import ALL
from lvseg.methods import get_method
from lvseg.metrics import summarize
from lvseg.jitter import jitter_centers
from lvseg.inference_options import MIN_AREA_MM2, EvaluateConfig, StarOverrides
from lvseg.prepare import load_prepared, prepare_data
from lvseg.runs import load_run
from lvseg.score import score
from lvseg.segment import Segmentation

__all__ = ["evaluate_run", "evaluate_run_volumes"]

def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    center_jitter: float = 0.0,
    jitter_seed: int = 0,
    figures_dir: str | os.PathLike[str] | None = None,
    max_figures: int | None = 12,
    method: str | None = None,
    device: str = "cpu",
    overrides: StarOverrides = StarOverrides(),
) -> dict[str, Any]:
    """Evaluate a run's best checkpoint; returns the summary with one row per image.

    Args:
        run_dir: the run directory.
        data: dataset name (default: the run's); another dataset is split with the run's seeds.
        data_dir: its folder (default: the run's when ``data`` is the run's dataset).
        split: one of :data:`~lvseg.inference_options.EVAL_SPLITS`; ``"all"``: every usable
            slice, training ones included.
        center_jitter: s.d. of the star-centre jitter as a fraction of the object radius
            (0: the centre of mass), truncated to the object.
        jitter_seed: seed of the jitter.
        figures_dir: write an overlay PNG per image there (at most ``max_figures``).
        method: evaluate a ``unet`` run as ``unet-dp`` (or back): the pixel-trained methods share
            their training, only the prediction differs.
        device: where the U-Net runs (``auto``, ``cpu`` or ``cuda``); the DP runs on the CPU.
        overrides: the run's star settings replaced for prediction (``delta``, ``n_lines``,
            ``edge_offset``, ``smoothing``; default: none); see :func:`load_run`.

    Returns:
        ``{"method", "checkpoint", "iteration", "data", "data_dir" (the folder read, absolute;
        ``None`` for generated data), "split", "center_jitter", "delta", "n_lines",
        "edge_offset", "smoothing" (the moving average's width, as used:
        :attr:`~lvseg.star.StarConfig.smoothing_width`), "smoothness" (the
        DP's smoothness penalty: the run's fixed one or the one it learned), "learned_smoothness"
        (whether it was learned), "n",
        "dice", "dice_std", "hd_mm", "hd_std", "hd95_mm", "hd95_std", "assd_mm", "assd_std",
        "n_undefined", "per_image": [{"index", "source", "patient_id", "center", "dice", "hd_mm",
        "hd95_mm", "assd_mm"}, ...]}`` (undefined distances are ``None``).
    """
    # the types and bounds of the options, written once in EvaluateConfig's fields (overrides,
    # a StarOverrides, checked its own: load_run checks that it is one)
    EvaluateConfig(data=data, data_dir=None if data_dir is None else str(data_dir), split=split,
                   center_jitter=center_jitter, jitter_seed=jitter_seed, device=device,
                   max_figures=0 if max_figures is None else max_figures)
    run = load_run(run_dir, device=device, overrides=overrides)
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
    if split == ALL:  # every usable slice: no patient split, so any folder works
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
                             np.random.default_rng(jitter_seed))
    centers_t = torch.from_numpy(centers)
    scores = score(config.method, run.unet, tensors["images"], tensors["masks"], centers_t,
                   config.star, spacing=sub.spacing)
    seg, rows = scores.segmentation, scores.rows
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
        "center_jitter": float(center_jitter), "delta": config.star.delta,
        "n_lines": config.star.n_lines, "edge_offset": config.star.edge_offset,
        "smoothing": config.star.smoothing_width,
        "smoothness": config.star.smoothness, "learned_smoothness": config.learn_smoothness,
        "n": summary["n"],
        "dice": summary["dice_mean"], "dice_std": summary["dice_std"],
        "hd_mm": summary["hd_mean"], "hd_std": summary["hd_std"],
        "hd95_mm": summary["hd95_mean"], "hd95_std": summary["hd95_std"],
        "assd_mm": summary["assd_mean"], "assd_std": summary["assd_std"],
        "n_undefined": summary["n_undefined"], "per_image": per_image,
    }  # fmt: skip


def evaluate_run_volumes(
    run_dir: str | os.PathLike[str],
    *,
    data_dir: str | None = None,
    split: str = "val",
    locator: str | os.PathLike[str] | None = None,
    min_lv_area: float = MIN_AREA_MM2,
    find: str = "auto",
    method: str | None = None,
    device: str = "cpu",
    overrides: StarOverrides = StarOverrides(),
    json_path: str | os.PathLike[str] | None = None,
    figure: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Score a run by the ACDC challenge's protocol, the LV found without ground truth.

    The patients are the ``patientNNN`` folders (with ``Info.cfg``) of ``data_dir`` (default:
    the run's), split by the run's scheme (``split``: ``val``, ``test`` or ``all``); each is
    segmented by :class:`lvseg.centre_free.RunSegmenter` and scored by
    :func:`lvseg.volumes.evaluate_volumes`; ``find`` chooses how the LV is found
    (:meth:`~lvseg.centre_free.RunSegmenter.finder`). ``overrides``
    (:class:`~lvseg.inference_options.StarOverrides`) replaces the run's star settings for
    prediction (:func:`~lvseg.runs.load_run`); without ``n_lines`` the star has
    :data:`~lvseg.inference_options.CENTRE_FREE_N_LINES` lines, or the run's if it has more
    (:func:`~lvseg.centre_free.centre_free_star`).

    Returns:
        ``{"summary", "patients"}`` of :func:`~lvseg.volumes.evaluate_volumes` with ``"run"``,
        ``"method"``, ``"checkpoint"``, ``"iteration"``, ``"locator"``, ``"find"`` (as given),
        ``"finder"`` (``map`` or ``motion``, as used on the ED/ES pairs), ``"split"``,
        ``"data_dir"``, ``"delta"``, ``"n_lines"``, ``"edge_offset"`` and ``"smoothing"`` (the
        segmenter's star, as used; ``"smoothing"``:
        :attr:`~lvseg.star.StarConfig.smoothing_width`);
        written to ``json_path`` if given.

    Raises:
        ValueError: if the run was not trained on ACDC-like patient folders, the folder holds
            none, or the split is empty.
    """
    from lvseg.centre_free import RunSegmenter
    from lvseg.volumes import evaluate_volumes

    EvaluateConfig(split=split, device=device, min_lv_area=min_lv_area, find=find)
    run = load_run(run_dir, device=device, overrides=overrides)
    folder = Path(data_dir or run.config.data_dir or "")
    if not folder.is_dir():
        raise FileNotFoundError(f"data directory {folder} does not exist; give --data-dir, a "
                                "folder of ACDC patient folders (patientNNN with Info.cfg)")
    patients = sorted(p for p in folder.iterdir() if (p / "Info.cfg").is_file())
    if not patients:
        raise ValueError(f"--protocol volumes reads ACDC patient folders (patientNNN with "
                         f"Info.cfg); {folder} holds none{subfolder_hint(folder)}")
    if split != ALL:
        scheme = SCHEMES[run.config.split]
        fractions = run.config.fractions or DATASETS[run.config.data].fractions
        chosen = set(scheme([p.name for p in patients], fractions,
                            run.config.split_seed).patients[split])
        patients = [p for p in patients if p.name in chosen]
        if not patients:
            raise ValueError(f"the {split} split ({run.config.split}) of {folder} is empty; use "
                             "--split all or another split")
    locating = None if locator is None else load_run(locator, device=device)
    segmenter = RunSegmenter(run, locator=locating, method=method, min_area_mm2=min_lv_area,
                             find=find)
    report = evaluate_volumes(patients, segmenter, centre="predicted", figure=figure)
    report = {"run": str(run_dir), "method": segmenter.method.name, "checkpoint": run.checkpoint,
              "iteration": run.iteration, "locator": None if locator is None else str(locator),
              "find": find, "finder": segmenter.finder(2),
              "split": split, "data_dir": str(folder.resolve()), **_star_record(segmenter),
              **report}
    if json_path is not None:
        atomic_write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode())
    return report


def _star_record(segmenter: Any) -> dict[str, Any]:
    """The star a :class:`~lvseg.centre_free.RunSegmenter` drew its contours with
    (:attr:`~lvseg.centre_free.RunSegmenter.drawn_star`); null without one."""
    star = segmenter.drawn_star
    keys = ("delta", "n_lines", "edge_offset", "smoothing")
    if star is None:
        return dict.fromkeys(keys)
    return dict(zip(keys, (star.delta, star.n_lines, star.edge_offset, star.smoothing_width)))


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
