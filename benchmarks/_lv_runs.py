"""What the LV benchmarks share: the run options of the ACDC studies, the environment of an
``lvseg`` child process, the lvseg commit a run ran on, machine metadata with the load over the
runs, and the evaluation record of a model.

Unlike ``_harness.py`` this module needs ``lvseg`` (imported by the functions that use it).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h
from benchmarks import _schedule

ROOT = Path(__file__).resolve().parent
#: ../shared/data/acdc next to the clone (or next to wt/ for a worktree in wt/<name>).
ACDC = next((p for p in (ROOT.parent.parent / "shared" / "data" / "acdc",
                         ROOT.parent.parent.parent / "shared" / "data" / "acdc")
             if (p / "training").is_dir()), ROOT.parent.parent / "shared" / "data" / "acdc")

LVSEG = Path(__file__).resolve().parent.parent / "examples" / "lv_segmentation" / "lvseg"
#: lvseg's data augmentation before issue #20's ACDC study made ``standard`` the default: the
#: studies that ran before pin it, so that a restart or a run added later trains what their
#: tables show (``lvseg.config.SAVED_BEFORE`` reads old run folders the same way).
AUGMENT_BEFORE = {"augment": "none"}
#: :data:`AUGMENT_BEFORE` as ``lvseg train`` options.
AUGMENT_BEFORE_OPTIONS = ("--augment", AUGMENT_BEFORE["augment"])


def add_run_options(p: argparse.ArgumentParser, work: Path, workers: int = 2) -> None:
    """The options of an LV study that trains on ACDC in run folders: ``--data-dir``, ``--work``
    (default ``work``), ``--threads`` and :func:`_schedule.add_options`."""
    p.add_argument("--data-dir", type=Path, default=ACDC, help="the ACDC folder (holds training/)")
    p.add_argument("--work", type=Path, default=work, help="run folders")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    _schedule.add_options(p, workers=workers)


def child_env(threads: int = 1) -> dict[str, str]:
    """The environment of a study's ``lvseg`` child process: this checkout's packages on
    ``PYTHONPATH``, ``threads`` threads (OMP, MKL, numba) and ``OMP_WAIT_POLICY=PASSIVE``
    (:func:`benchmarks._harness.thread_env`)."""
    env = dict(os.environ)
    paths = [h.REPO, h.REPO / "plugins" / "stardp", h.REPO / "examples" / "lv_segmentation"]
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(":")
    return {**env, **h.thread_env(threads)}


def acdc_training(data_dir: Path, study: str) -> Path:
    """``data_dir/training``, resolved; a ``SystemExit`` naming the folder (and ``study``) if
    ACDC is absent there (the studies that also run on phantoms with ``--quick``)."""
    training = data_dir / "training"
    if not training.is_dir():
        raise SystemExit(f"{study}: ACDC not found at {training} (research licence, not "
                         "redistributed; see ../shared/data/acdc/README.md): pass --data-dir "
                         "with the folder that holds training/; --quick runs on phantoms")
    return training.resolve()


def lvseg_commit() -> dict[str, Any]:
    """HEAD, and whether ``lvseg`` has uncommitted changes (with their diff stat)."""
    dirty = h.git_commit("status", "--porcelain", "--", str(LVSEG))
    return {"commit": h.git_commit(), "lvseg_uncommitted_changes": bool(dirty),
            "lvseg_uncommitted_diff_stat": h.git_commit("diff", "--stat", "--", str(LVSEG)) or None}


def commit_record(now: dict[str, Any]) -> dict[str, Any]:
    """A run record's commit fields, the keys :func:`commits_of` reads (``now``:
    :func:`lvseg_commit` when the run started)."""
    return {"lvseg_commit": now["commit"],
            "lvseg_uncommitted_changes": now["lvseg_uncommitted_changes"]}


def commits_of(records: list[dict[str, Any]], now: dict[str, Any]) -> dict[str, Any]:
    """What the runs ran on, and HEAD when the JSON was written (``now``: :func:`lvseg_commit`)."""
    return {
        "commits_of_runs": sorted({r.get("lvseg_commit", "") for r in records}),
        "lvseg_uncommitted_changes_in_any_run": any(
            r.get("lvseg_uncommitted_changes", False) for r in records),
        "head_when_written": now["commit"],
        "lvseg_uncommitted_changes_when_written": now["lvseg_uncommitted_changes"],
    }  # fmt: skip


def machine(load: h.Load, records: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`_harness.machine_info` with the load average of this process and over the runs."""
    return h.machine_info(load_average_start_end=str(load),
                          load_average_over_runs_min_median_max=_loads(records))  # fmt: skip


def _loads(records: list[dict[str, Any]]) -> str | None:
    loads = [r[k] for r in records for k in ("load_average_start", "load_average_end") if k in r]
    if not loads:
        return None
    return f"{min(loads):.2f} / {float(np.median(loads)):.2f} / {max(loads):.2f}"


def num(value: float) -> float | None:
    """A JSON number, ``None`` for NaN."""
    return None if math.isnan(value) else float(value)


def evaluation(method: str, unet: Any, images: Any, masks: Any, centers: Any, star: Any,
               spacing: Any, per_image: bool = True) -> dict[str, Any]:  # fmt: skip
    """Segment with ``method`` and score inside the star square (``lvseg.score``): mean Dice,
    its s.d. over images, mean HD and ASSD, counts."""
    from lvseg.metrics import summarize
    from lvseg.score import score

    rows = score(method, unet, images, masks, centers, star, spacing=spacing).rows
    s = summarize(rows)
    out = {"dice": s["dice_mean"], "dice_std_images": s["dice_std"], "hd_mm": num(s["hd_mean"]),
           "assd_mm": num(s["assd_mean"]), "n_undefined": s["n_undefined"], "n_test": s["n"]}
    if per_image:
        out["dice_per_image"] = [round(float(r["dice"]), 5) for r in rows]
    return out
