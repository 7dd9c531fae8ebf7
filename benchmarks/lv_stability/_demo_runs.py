"""One run of the demo augmentation sweep: its options, its augmentation, and its record, trained
and scored by ``lvseg`` in a child process that streams one record per finished run.

The sweep's augmentations are lvseg's ``--augment`` presets and the parts of ``standard`` one at
a time (:data:`PARTS`), which lvseg has no preset for. The child process registers them in
:data:`lvseg.train_choices.PRESETS` before ``lvseg.config`` is imported (the ``--augment``
choices are read from that table once, at import), so that the runs are the commands a user
types with one more preset name and each ``config.json`` names the augmentation it trained with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from benchmarks import _lv_runs

#: The parts of lvseg's ``standard`` preset, one at a time: name -> the ``AugmentConfig`` fields
#: taken from ``standard`` (every other range 0).
PARTS: dict[str, tuple[str, ...]] = {
    "flips": ("flip",),
    "geometry": ("rotation", "scale"),
    "intensity": ("gamma", "contrast", "brightness"),
}
#: The sweep's augmentations in table order: lvseg's presets, then :data:`PARTS`.
PRESETS = ("none", "standard", "noflip", *PARTS)
#: The ``lvseg train`` methods the sweep trains; the ``unet`` run is also scored through the DP
#: (``lvseg evaluate --dp``, the demo's U-Net+DP row).
METHODS = ("edpcnn", "unet")
#: What each method's run is scored as on the test patient: record field -> evaluate options.
SCORES: dict[str, dict[str, tuple[str, ...]]] = {
    "edpcnn": {"test_dice": ()},
    "unet": {"test_dice": (), "test_dice_dp": ("--dp",)},
}
#: The data options of ``make demo`` (``examples/demo.py``): the bundled Sunnybrook sample.
DEMO_DATA = ("--data", "sunnybrook", "--train-size", "10")
#: Prefix of a record line on the child's standard output (lvseg's own output goes to its log).
RECORD = "demo_augment record: "


@dataclass(frozen=True)
class DemoRun:
    """One planned ``lvseg train`` run: ``method`` with augmentation ``preset`` (one of
    :data:`PRESETS`) and ``seed``, ``iterations`` long with a validation every ``val_every``."""

    method: str
    preset: str
    seed: int
    iterations: int
    val_every: int

    @property
    def key(self) -> str:
        """The run's name: its folder and its record's ``key``, e.g. ``edpcnn_noflip_s2``."""
        return f"{self.method}_{self.preset}_s{self.seed}"

    def options(self) -> list[str]:
        """The ``lvseg train`` options of the run, without ``--out``."""
        return ["--method", self.method, *DEMO_DATA, "--iterations", str(self.iterations),
                "--val-every", str(self.val_every), "--seed", str(self.seed), "--augment",
                self.preset]  # fmt: skip


def part_configs() -> dict[str, Any]:
    """:data:`PARTS` as ``AugmentConfig`` objects, their ranges those of lvseg's ``standard``."""
    from lvseg.train_choices import PRESETS as LVSEG_PRESETS
    from lvseg.train_choices import AugmentConfig

    standard = LVSEG_PRESETS["standard"]
    return {name: AugmentConfig(**{f: getattr(standard, f) for f in fields})
            for name, fields in PARTS.items()}  # fmt: skip


def register_parts() -> None:
    """Add :data:`PARTS` to lvseg's ``--augment`` presets in this process.

    Raises:
        RuntimeError: if ``lvseg.config`` was imported before (its ``--augment`` choices are
            fixed then): call this first in a fresh process.
    """
    from lvseg.train_choices import PRESETS as LVSEG_PRESETS

    if "lvseg.config" in sys.modules and not set(PARTS) <= set(LVSEG_PRESETS):
        raise RuntimeError("register_parts must run before lvseg.config is imported (its "
                           "--augment choices are read once); got lvseg.config already imported")
    LVSEG_PRESETS.update(part_configs())


def fell(at_rim: int | None, n_val: int) -> bool | None:
    """Whether a run fell: its DP contours at the star's rim on most validation images.

    lvseg's rule (:func:`lvseg.star.training_fell`, which ``RimWarning`` uses), with ``at_rim``
    the validation event's count (``lvseg.score.Scores.at_rim``) and ``n_val`` the validation
    images. ``None`` for a run without the DP at validation (``at_rim`` absent: the U-Net).

    Example:
        >>> fell(10, 18), fell(9, 18), fell(None, 18)
        (True, False, None)
    """
    from lvseg.star import training_fell  # here: the child registers presets before lvseg loads

    return None if at_rim is None else training_fell(at_rim, n_val)


@lru_cache(maxsize=None)
def _n_val(config_json: str) -> int:
    """The validation images of a run's ``config.json`` (the split does not depend on the seed)."""
    from lvseg.config import TrainConfig
    from lvseg.prepare import prepare_data

    return len(prepare_data(TrainConfig.from_dict(json.loads(config_json))).val)


def summary(run: DemoRun, run_dir: Path) -> dict[str, Any]:
    """A finished run directory's curve, best validation, last ``at_rim`` and fall."""
    from lvseg.hooks import read_metrics

    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    split = {k: config[k] for k in ("data", "data_dir", "split", "split_seed", "fractions")}
    n_val = _n_val(json.dumps({"method": config["method"], **split}, sort_keys=True))
    vals = [e for e in read_metrics(run_dir / "metrics.jsonl") if e["event"] == "validation"]
    if not vals:
        raise ValueError(f"{run_dir}: metrics.jsonl has no validation event; the sweep needs "
                         f"val_every <= iterations (got {run.val_every} and {run.iterations})")
    last = vals[-1]
    return {"validations": [[e["iteration"], round(e["dice"], 5)] for e in vals],
            "best_dice": last["best_dice"], "best_iteration": last["best_iteration"],
            "at_rim_last": last.get("at_rim"), "n_val": n_val,
            "fell": fell(last.get("at_rim"), n_val), "augment": config["augment"]}  # fmt: skip


def train_and_score(run: DemoRun, work: Path) -> dict[str, Any]:
    """Train ``run`` in ``work/<key>/run`` (a previous folder is deleted) with ``lvseg train``,
    score its ``best.pt`` on the test patient with ``lvseg evaluate --split test`` as the demo
    does, and return its record. lvseg's output goes to standard error."""
    import torch
    from lvseg.cli import main as lvseg
    from lvseg.train_choices import PRESETS as LVSEG_PRESETS

    folder = work / run.key
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    run_dir = folder / "run"
    load, commit, start = os.getloadavg()[0], _lv_runs.lvseg_commit(), time.perf_counter()
    argv = ["train", *run.options(), "--no-progress", "--out", str(run_dir)]
    with contextlib.redirect_stdout(sys.stderr):
        if lvseg(argv):
            raise SystemExit(f"demo_augment: lvseg {' '.join(argv)} failed")
        seconds, scores = time.perf_counter() - start, {}
        for field, extra in SCORES[run.method].items():
            out = folder / f"{field}.json"
            if lvseg(["evaluate", str(run_dir), "--split", "test", "--json", str(out), *extra]):
                raise SystemExit(f"demo_augment: lvseg evaluate {run_dir} {extra} failed")
            scores[field] = json.loads(out.read_text(encoding="utf-8"))
    return {"key": run.key, "method": run.method, "preset": run.preset, "seed": run.seed,
            "iterations": run.iterations, "val_every": run.val_every,
            "augment_ranges": dataclasses.asdict(LVSEG_PRESETS[run.preset]),
            "test_dice": scores["test_dice"]["dice"],
            "test_dice_dp": scores["test_dice_dp"]["dice"] if "test_dice_dp" in scores else None,
            "n_test": scores["test_dice"]["n"], **summary(run, run_dir),
            "seconds": round(seconds, 2),
            "evaluate_seconds": round(time.perf_counter() - start - seconds, 2),
            "threads": torch.get_num_threads(), "load_average_start": load,
            "load_average_end": os.getloadavg()[0], "command": "lvseg " + " ".join(argv[:-2]),
            **_lv_runs.commit_record(commit)}  # fmt: skip


def child(runs: list[DemoRun], work: Path) -> None:
    """The child process: register :data:`PARTS`, then train and score each run in turn,
    printing its record on standard output as soon as it is done."""
    register_parts()
    for run in runs:
        record = train_and_score(run, work)
        print(RECORD + json.dumps(record), flush=True)
