"""One planned ``lvseg train --method edpcnn`` run: its options, its folder, and its record,
trained in a fresh process or adopted from a finished run directory.

A run folder ``<work>/<key>/`` holds the ``lvseg`` run directory ``run/`` and, for a run this
study trained, ``record.json`` (with the load average and the commit). A run directory whose
``metrics.jsonl`` ends with an ``"end"`` event at the planned iteration is finished: it is
never trained again, and one copied in by hand is adopted once its ``config.json`` is checked
against the plan (:func:`check_config`). Any other folder is deleted and trained from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks.lv_stability._summary import curve_summary

#: The surrogate settings compared: name -> the ``lvseg train`` options it adds (``S``: noise
#: samples per input, ``k``: surrogate fit steps per iteration). ``S1k1`` was lvseg's default
#: before this study, ``S1k3`` is since; each variant names its fit steps, so that the plan does
#: not move with lvseg's default.
VARIANTS: dict[str, tuple[str, ...]] = {
    "S1k1": ("--fit-steps", "1"),
    "S1k3": ("--fit-steps", "3"),
    "S3k1": ("--samples", "3", "--fit-steps", "1"),
    "S1k1-lr3e-4": ("--lr", "3e-4", "--fit-steps", "1"),
}
#: Every run's data augmentation: none, lvseg's default when this study ran (as options).
AUGMENT_BEFORE = _lv_runs.AUGMENT_BEFORE_OPTIONS
#: The ``config.json`` fields that an adopted run directory must share with the plan.
CHECKED = ("method", "data", "split", "train_size", "iterations", "val_every", "seed",
           "fit_steps", "samples", "lr", "augment")  # fmt: skip
METHOD = "edpcnn"


@dataclass(frozen=True)
class Run:
    """One planned run: ``variant`` (a key of :data:`VARIANTS`) at training-set ``size`` (a
    number of slices or ``"all"``) and ``seed``, for ``iterations`` with a validation every
    ``val_every``."""

    size: int | str
    variant: str
    seed: int
    iterations: int
    val_every: int

    @property
    def key(self) -> str:
        """The run's name: its folder and its record's ``key``, e.g. ``n10_S1k3_s2``."""
        return f"n{self.size}_{self.variant}_s{self.seed}"

    def options(self, data: list[str]) -> list[str]:
        """The ``lvseg train`` options of the run on ``data`` (the data options), without
        ``--out``."""
        return ["--method", METHOD, *data, "--train-size", str(self.size), "--iterations",
                str(self.iterations), "--val-every", str(self.val_every), "--seed",
                str(self.seed), *AUGMENT_BEFORE, *VARIANTS[self.variant]]  # fmt: skip


def planned_config(options: list[str]) -> dict[str, Any]:
    """The ``config.json`` that ``lvseg train`` writes for ``options``, resolved by lvseg's own
    parser and :class:`~lvseg.config.TrainConfig` (its defaults are not repeated here)."""
    from lvseg.cli import build_parser
    from lvseg.config import TrainConfig
    from lvseg.options import given_options
    from lvseg.star import StarConfig

    args = build_parser(("train",)).parse_args(["train", *options, "--out", "unused"])
    star = StarConfig(**given_options(args, StarConfig))
    return TrainConfig(star=star, **given_options(args, TrainConfig)).to_dict()


def check_config(run: Run, data: list[str], run_dir: Path) -> None:
    """Refuse a run directory whose ``config.json`` differs from the plan in a :data:`CHECKED`
    field.

    Raises:
        ValueError: naming the folder, each differing field with its value and the planned one,
            and the fix.
    """
    from lvseg.config import SAVED_BEFORE

    got = {**SAVED_BEFORE, **json.loads((run_dir / "config.json").read_text(encoding="utf-8"))}
    want = planned_config(run.options(data))
    diff = [f"{k} {got.get(k)!r} (planned {want[k]!r})" for k in CHECKED
            if not _same(got.get(k), want[k])]  # fmt: skip
    if diff:
        raise ValueError(f"{run_dir} is a finished run, but not the planned {run.key}: its "
                         f"config.json has {'; '.join(diff)}; move it away (or delete it) and "
                         "the study trains the planned run there")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and np.isclose(a, b)
    return a == b


def events(run_dir: Path) -> list[dict[str, Any]]:
    """The events of ``run_dir/metrics.jsonl`` (none if it does not exist; a last line cut by a
    crash is dropped by :func:`lvseg.hooks.read_metrics`)."""
    from lvseg.hooks import read_metrics

    path = run_dir / "metrics.jsonl"
    return read_metrics(path) if path.is_file() else []


def finished(run_dir: Path, iterations: int) -> bool:
    """Whether ``run_dir`` holds a run that ended at ``iterations`` (an ``"end"`` event)."""
    return any(e.get("event") == "end" and e.get("iteration") == iterations
               for e in events(run_dir))  # fmt: skip


def read_run(run: Run, run_dir: Path) -> dict[str, Any]:
    """The record of a finished run directory: plan, validation curve, :func:`curve_summary`,
    median step seconds and the end event's total seconds."""
    ev = events(run_dir)
    steps = [e["seconds"] for e in ev if e["event"] == "step"]
    end = next(e for e in ev if e["event"] == "end")
    curve = [[e["iteration"], round(e["dice"], 5)] for e in ev if e["event"] == "validation"]
    return {"key": run.key, "size": run.size, "variant": run.variant, "seed": run.seed,
            "options": list(VARIANTS[run.variant]), "iterations": run.iterations,
            "val_every": run.val_every, "validations": curve,
            **curve_summary(curve, run.iterations),
            "median_step_seconds": float(np.median(steps)) if steps else None,
            "total_seconds": end["seconds"]}  # fmt: skip


def train(run: Run, data: list[str], folder: Path) -> dict[str, Any]:
    """The record of ``run`` in ``folder``: adopted if ``folder/run`` is finished (its config
    checked), else trained there from scratch in a fresh single-threaded process."""
    run_dir = folder / "run"
    if finished(run_dir, run.iterations):
        check_config(run, data, run_dir)
        if (folder / "record.json").is_file():
            return json.loads((folder / "record.json").read_text(encoding="utf-8"))
        return {**read_run(run, run_dir), "adopted": True, "load_average_start": None,
                "load_average_end": None, "lvseg_commit": None}  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "lvseg.cli", "train", *run.options(data), "--no-progress",
           "--out", str(run_dir)]  # fmt: skip
    load, now = H.Load(), _lv_runs.lvseg_commit()
    proc = subprocess.run(cmd, env=_lv_runs.child_env(), cwd=H.REPO, capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode or not finished(run_dir, run.iterations):
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"lv_stability: lvseg train for {run.key} failed (exit "
                         f"{proc.returncode}); its folder: {folder}")
    check_config(run, data, run_dir)
    record = {**read_run(run, run_dir), "adopted": False, "command": " ".join(cmd[3:]),
              "load_average_start": load.start, "load_average_end": os.getloadavg()[0],
              **_lv_runs.commit_record(now)}  # fmt: skip
    H.atomic_write(folder / "record.json", json.dumps(record) + "\n")
    return record
