"""How fine the DP contour is drawn (``StarConfig.smoothing``, ``n_lines``): kept runs re-scored.

The DP's indices pass through a circular moving average along the star's lines before the
contour is drawn (``smoothing``: the odd width nearest N/4 by default, 7 of 25 lines). On the
whole volumes of issue #19 a narrower average or more lines at prediction raised the
80-patient run's 3-D Dice at end-diastole (``benchmarks/lv_volumes/README.md``); this module
asks whether the runs of the study, trained on 10 and 20 images, gain too. Every kept run of
``_edge.py``'s kind (``best.pt`` under ``.runs/full``, a DP method) is scored on the 372
validation images at each setting of :data:`SETTINGS`, with the contour at the edge (0.5), the
same weights and images; the run's own setting must reproduce its record first. One line per run
in ``results/raw/smoothing.jsonl``; a run already there is not scored again.

Usage (one core, about a minute per run; README.md, "How fine the contour is drawn")::

    OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.acdc_ablation._smoothing \\
        --data-dir ../shared/data/acdc/training --table
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from benchmarks.acdc_ablation._edge import RUNS, rescore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "raw" / "smoothing.jsonl"
#: The prediction settings compared: star lines and moving-average width (``None``: the default
#: width for that many lines). ``n25_sm7`` is lvseg's default, the reference of the differences.
SETTINGS = {"n25_sm7": {"n_lines": 25, "smoothing": None},
            "n25_sm5": {"n_lines": 25, "smoothing": 5},
            "n25_sm3": {"n_lines": 25, "smoothing": 3},
            "n25_sm1": {"n_lines": 25, "smoothing": 1},
            "n50_sm13": {"n_lines": 50, "smoothing": None},
            "n50_sm7": {"n_lines": 50, "smoothing": 7},
            "n50_sm5": {"n_lines": 50, "smoothing": 5}}
REFERENCE = "n25_sm7"
#: The record of the DP on the true masks (no training).
TRUTH = "truth"


def score_run(run_dir: Path, record: dict, data) -> dict | None:
    """The run's validation Dice at each setting (contour at the edge), or ``None`` when its
    ``best.pt`` does not reproduce its record at the run's own star settings."""
    from lvseg.runs import load_run

    start = time.perf_counter()
    run = load_run(run_dir)
    method, star = run.config.method, run.config.star
    if abs(data.dice(method, run.unet, star) - record["evaluations"][method]["dice"]) > 1e-6:
        return None
    star = dataclasses.replace(star, edge_offset=0.5)
    dice = {k: data.dice(method, run.unet, dataclasses.replace(star, **s))
            for k, s in SETTINGS.items()}
    return {"key": record["key"], "size": record["size"], "seed": record["seed"],
            "variant": record["variant"], "method": method, "dice": dice,
            "seconds": round(time.perf_counter() - start, 1)}


def score_truth(data) -> dict:
    """The star DP on the true validation masks at each setting: what each can represent."""
    from benchmarks.acdc_ablation._data import truth_dice
    from lvseg.config import TrainConfig

    star = dataclasses.replace(TrainConfig(method="edpcnn-es").star, edge_offset=0.5)
    return {"key": TRUTH, "size": 0, "seed": 0, "variant": TRUTH, "method": "dp-on-truth",
            "dice": {k: truth_dice(data, dataclasses.replace(star, **s))
                     for k, s in SETTINGS.items()}}


def table(records: list[dict]) -> str:
    """Per row and size: the mean Dice at the reference, and each setting's paired difference
    (mean, and how many runs gain)."""
    others = [k for k in SETTINGS if k != REFERENCE]
    lines = [f"| row | images | runs | Dice, {REFERENCE} | " + " | ".join(others) + " |",
             "|---|---|---|---|" + "---|" * len(others)]
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r.get("size", 0), r.get("variant", TRUTH)), []).append(r)
    trained = [r for r in records if r["key"] != TRUTH]
    for (size, variant), rs in sorted(groups.items()) + [((0, "every trained run"), trained)]:
        if not rs:
            continue
        cells = []
        for k in others:
            diffs = [r["dice"][k] - r["dice"][REFERENCE] for r in rs]
            gain = "" if len(rs) == 1 else f" ({sum(d > 0 for d in diffs)}/{len(rs)})"
            cells.append(f"{round(statistics.mean(diffs), 3) + 0.0:+.3f}{gain}")  # no -0.000
        images = "none" if variant == TRUTH else (size or "")
        lines.append(f"| {variant} | {images} | {len(rs)} | "
                     f"{statistics.mean(r['dice'][REFERENCE] for r in rs):.3f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Score the kept runs not yet in the results, then (``--table``) print the table."""
    return rescore(argv, __doc__, RESULTS, RUNS, TRUTH, score_truth, score_run, table)


if __name__ == "__main__":
    raise SystemExit(main())
