"""The runs behind each cell of the study's tables, and how a cell shows them: validation Dice
(mean ± s.d. over seeds) and the seconds of a run (median over seeds) with the machine's load.

A run's seconds are its iterations times its median seconds per training step
(:func:`run_seconds`): the record of a resumed run times only its last session, and the sum of a
session's steps includes the stalls of a shared machine, so neither sums to a comparable cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.acdc_ablation._study import LABELS, ROWS, Plan


@dataclass(frozen=True)
class Run:
    """One evaluated run of a table row: its seed, validation Dice, seconds (``None``: no
    training, the label-free baselines) and the load averages recorded at its start and end."""

    seed: int
    dice: float
    seconds: float | None
    loads: tuple[float, ...]


def run_seconds(rec: dict[str, Any]) -> float | None:
    """Training seconds of the run of record ``rec``: ``iterations`` x its median seconds per
    training step (``seconds_per_iteration_median``, validations excluded); ``None`` without
    training steps."""
    median = rec.get("seconds_per_iteration_median")
    return None if median is None else rec["iterations"] * median


def row_of(rec: dict[str, Any], evaluated: str) -> str:
    """The table row of the evaluation ``evaluated`` of a record: the evaluation's name for the
    unet, edpcnn and baseline runs (the unet run also gives U-Net+DP), else the variant."""
    return evaluated if rec["variant"] in ("unet", "edpcnn", "baselines") else rec["variant"]


def runs(records: list[dict[str, Any]]) -> dict[tuple[str, int], list[Run]]:
    """Every evaluated run by (row, size), in the records' order."""
    out: dict[tuple[str, int], list[Run]] = {}
    for rec in records:
        loads = tuple(rec[k] for k in ("load_average_start", "load_average_end") if k in rec)
        for name, ev in rec.get("evaluations", {}).items():
            run = Run(rec["seed"], ev["dice"], run_seconds(rec), loads)
            out.setdefault((row_of(rec, name), rec["size"]), []).append(run)
    return out


def scores(records: list[dict[str, Any]]) -> dict[tuple[str, int], list[float]]:
    """Validation Dice of every run by (row, size): the best checkpoint's for trained models."""
    return {key: [r.dice for r in cell] for key, cell in runs(records).items()}


def dice_cell(cell: list[Run]) -> str:
    """``mean ± s.d. (n)`` of the runs' Dice (``mean (1)`` for one run, ``-`` for none)."""
    vals = [r.dice for r in cell]
    if not vals:
        return "-"
    spread = f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else ""
    return f"{np.mean(vals):.3f}{spread} ({len(vals)})"


def median_seconds(cell: list[Run]) -> float | None:
    """The median of the runs' seconds (``None`` where no run trained)."""
    secs = [r.seconds for r in cell if r.seconds is not None]
    return float(np.median(secs)) if secs else None


def seconds_cell(cell: list[Run]) -> str:
    """``median s (n; load lo–hi)``; ``-`` without runs, ``no training`` for the baselines."""
    median = median_seconds(cell)
    if median is None:
        return "no training" if cell else "-"
    n = sum(r.seconds is not None for r in cell)
    loads = [x for r in cell if r.seconds is not None for x in r.loads]
    load = f"; load {min(loads):.1f}–{max(loads):.1f}" if loads else ""
    return f"{median:.0f} s ({n}{load})"


def seconds_table(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The rows of Table 5.1 with the median training seconds of a run per size."""
    got = runs(records)
    rows = [[LABELS[row]] + [seconds_cell(got.get((row, s), [])) for s in plan.sizes]
            for row in ROWS]  # fmt: skip
    return {"columns": ["method"] + [f"{s} images" for s in plan.sizes], "rows": rows}


def seconds_method(records: list[dict[str, Any]]) -> str:
    """How the seconds were measured, with the load range and the stalls of these records."""
    trained = [r for r in records if run_seconds(r) is not None]
    loads = [r[k] for r in trained for k in ("load_average_start", "load_average_end") if k in r]
    text = (
        "Seconds of a run: its iterations times its median seconds per training step "
        "(`seconds_per_iteration_median`: one `Trainer.step`, batch, forward, backward, the "
        "surrogate's fit or the teacher's targets; validations excluded, since the study "
        "validates the methods at different periods), median over the runs (seeds) of a cell. "
        "They are wall seconds on the project's shared 2-core CPU, one thread per run and two "
        "runs at a time, at the load averages recorded with each run (`load_average_start` / "
        "`_end`)")
    if loads:
        text += f": {min(loads):.1f} to {max(loads):.1f} over these runs"
    single = [r for r in trained if not r.get("resumed") and "overhead_seconds_this_session" in r]
    ratios = [(r["train_seconds_this_session"] - r["overhead_seconds_this_session"]) / secs
              for r in single if (secs := run_seconds(r))]  # fmt: skip
    text += (". A step's time grows with the load, so compare seconds between runs of similar "
             "load only. The median step is used because a resumed run's record times only its "
             "last session, and a session's sum of steps includes stalls of the shared machine")
    if ratios:
        text += (f" (over the {len(ratios)} runs trained in one session, the sum of steps was "
                 f"{min(ratios):.2f} to {max(ratios):.2f} times this estimate)")
    return text + "."
