"""Per-slice error analysis of the centre-free segmentation (where the 3-D Dice and EF are lost).

For each ED/ES slice of the patients, compares a run's :class:`~lvseg.volumes.SliceResult`
with the ground truth and puts it in one category: ``no LV`` (both agree there is none),
``missed`` (the segmenter said "no LV" on an LV slice), ``false LV`` (a mask on a slice without
LV), ``centre outside`` (the star's centre is not in the true LV), ``rim`` (more than half the
star's lines end at its radius), or ``ok``. A row is ``warned`` when a plausibility warning of
the run names its slice; a wrong slice (false LV, centre outside, rim) without one is a silent
failure, counted per phase as ``silent`` (issue #19: every slice passes the checks, is "no LV",
or is warned about). Per phase and category it sums the predicted and true
LV pixels (in mL, the volume error each category causes) and the slices' 2-D Dice; the slice's
position is its index from the base (0) over the number of slices.

Run ``python -m benchmarks.lv_volumes.slices RUN_DIR [--locator RUN_DIR] [--json FILE]
[--no-fallback] [--n-lines N]`` from the repository root; the 20 thesis-validation patients by
default (about 2-4 minutes on 2 busy cores). The star has lvseg's centre-free lines unless
``--n-lines`` is given; the JSON records the number used (``"n_lines"``; null for a ``unet``
run, which has no star). The findings are in ``README.md`` (measured with the runs' 25 lines,
before the centre-free default).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lv_volumes.__main__ import ACDC

CATEGORIES = ("ok", "rim", "centre outside", "missed", "false LV", "no LV")


#: The categories of a wrong contour: without a warning, a silent failure.
WRONG = ("false LV", "centre outside", "rim")
_WARNING = re.compile(r"^frame (\d+), slice (\d+): ")


def warned_slices(warnings: list[str], frames: tuple[int, ...], ed: int, es: int
                  ) -> set[tuple[str, int]]:
    """The ``(phase, z)`` of the ED/ES slices that ``warnings`` name (``"frame F, slice Z: ..."``
    with ``F`` in ``frames``, the volume's frame numbers; every plausibility warning names its
    frame, the checks across ED and ES included).

    Example:
        >>> sorted(warned_slices(["frame 13, slice 2: x", "frame 1, slice 0: y",
        ...                       "frame 5, slice 1: z", "slice 3: no frame"], (1, 13), ed=0, es=1))
        [('ED', 0), ('ES', 2)]
    """
    phase_of = {frames[ed]: "ED", frames[es]: "ES"}
    out = set()
    for warning in warnings:
        match = _WARNING.match(warning)
        if match is None:
            continue
        phase = phase_of.get(int(match.group(1)))
        if phase is not None:
            out.add((phase, int(match.group(2))))
    return out


def slice_rows(patients: list[Path], log: list[Any],
               warnings: list[list[str]] | None = None) -> list[dict[str, Any]]:
    """One row per ED/ES slice: category, areas (mL in the slice), 2-D Dice, centre error, and
    whether ``warnings`` (each patient's plausibility warnings; none if not given) name it."""
    from lvseg.volumes import read_patient

    rows = []
    for k, (folder, results) in enumerate(zip(patients, log)):
        case = read_patient(folder, cine=False)
        warned = warned_slices([] if warnings is None else warnings[k], case.volume.frames,
                               case.ed, case.es)
        n_z = case.volume.array.shape[1]
        dz, dy, dx = case.volume.spacing
        voxel_ml = dz * dy * dx / 1000.0
        for phase, t in (("ED", case.ed), ("ES", case.es)):
            for z in range(n_z):
                r, true = results[t * n_z + z], case.truth[t][z]
                pred = np.asarray(r.mask, bool)
                rim = None
                if r.radii is not None:
                    rim = float(np.mean(np.asarray(r.radii) >= 0.95 * r.star_radius))
                err, inside = None, None
                if r.has_lv and true.any():
                    rows_, cols = np.nonzero(true)
                    err = float(np.hypot((r.center[0] - cols.mean()) * dx,
                                         (r.center[1] - rows_.mean()) * dy))
                    if r.center is not None:
                        col, row = int(round(r.center[0])), int(round(r.center[1]))
                        inside = bool(0 <= row < true.shape[0] and 0 <= col < true.shape[1]
                                      and true[row, col])
                if not true.any():
                    category = "false LV" if pred.any() else "no LV"
                elif not r.has_lv:
                    category = "missed"
                elif inside is False:
                    category = "centre outside"
                elif rim is not None and rim > 0.5:
                    category = "rim"
                else:
                    category = "ok"
                total = int(pred.sum()) + int(true.sum())
                rows.append({
                    "patient": case.patient_id, "phase": phase, "z": z,
                    "position": z / max(n_z - 1, 1), "category": category,
                    "pred_ml": float(pred.sum() * voxel_ml), "true_ml": float(true.sum() * voxel_ml),
                    "dice": 1.0 if total == 0 else 2.0 * int((pred & true).sum()) / total,
                    "centre_mm": err, "rim": rim, "warned": (phase, z) in warned})
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per phase and category: slices, summed predicted - true mL, mean 2-D Dice; per position
    third (base, middle, apex) of the LV slices; and ``silent``, the wrong slices (:data:`WRONG`)
    that no warning names."""
    out: dict[str, Any] = {}
    for phase in ("ED", "ES"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            if row["phase"] == phase:
                groups[row["category"]].append(row)
                if row["category"] in WRONG and not row.get("warned"):
                    groups["silent"].append(row)
                if row["true_ml"] > 0:
                    third = ("base", "middle", "apex")[min(int(row["position"] * 3), 2)]
                    groups["position " + third].append(row)
        out[phase] = {name: {"slices": len(g),
                             "error_ml": round(sum(r["pred_ml"] - r["true_ml"] for r in g), 1),
                             "true_ml": round(sum(r["true_ml"] for r in g), 1),
                             "dice": round(float(np.mean([r["dice"] for r in g])), 3)}
                      for name, g in sorted(groups.items())}
    return out


def main() -> None:
    from lvseg.centre_free import RunSegmenter
    from lvseg.inference_options import CENTRE_FREE_N_LINES, StarOverrides
    from lvseg.runs import load_run
    from lvseg.volumes import evaluate_volumes

    from benchmarks.lv_volumes.__main__ import _recorder, star_lines, validation_patients

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--locator", metavar="RUN_DIR")
    p.add_argument("--data-dir", type=Path, default=ACDC)
    p.add_argument("--patients", type=int, default=20, help="the first N validation patients")
    p.add_argument("--json", type=Path, help="write rows and summary here")
    p.add_argument("--no-fallback", action="store_true",
                   help="keep implausible DP contours (RunSegmenter(fallback=False))")
    p.add_argument("--n-lines", type=int, metavar="N", help="star lines (default: "
                   f"{CENTRE_FREE_N_LINES}, or the run's if it has more: lvseg's centre-free "
                   "default)")
    args = p.parse_args()
    patients = validation_patients(args.data_dir)[:args.patients]
    run = load_run(args.run_dir, overrides=StarOverrides(n_lines=args.n_lines))
    locator = None if args.locator is None else load_run(args.locator)
    log: list[Any] = []
    segmenter = RunSegmenter(run, locator=locator, fallback=not args.no_fallback)
    report = evaluate_volumes(patients, _recorder(segmenter, log))
    rows = slice_rows(patients, log, [p["warnings"] for p in report["patients"]])
    result = {"summary": report["summary"], "n_lines": star_lines(segmenter),
              "slices": summarize(rows), "rows": rows}
    print(json.dumps({k: result[k] for k in ("summary", "slices")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
