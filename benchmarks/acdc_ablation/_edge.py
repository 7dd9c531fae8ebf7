"""Where the DP contour is drawn (``StarConfig.edge_offset``): the study's kept runs re-scored.

The DP returns, on each star line, the index of the last point inside the LV (the convention of
``mask_to_indices``, which the methods are trained to reproduce); the LV's edge lies between
that point and the next. Every finished run of the study whose ``best.pt`` is kept under
``.runs/full`` and whose method draws a DP contour (``edpcnn``, ``edpcnn-softdp``,
``edpcnn-es``) is scored again on the 372 validation images with the contour through the chosen
points (offset 0: what every row of the study reports, checked against the run's record) and
half a point step further out (0.5, lvseg's default since this comparison). The comparison is
paired: the same weights and images, only the contour moves. One line per run in
``results/raw/edge.jsonl``; a run already there is not scored again.

Usage (one core, about half a minute per run; README.md, "Where the contour is drawn")::

    OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.acdc_ablation._edge \\
        --data-dir ../shared/data/acdc/training --table
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import _harness as h

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "raw" / "edge.jsonl"
RUNS = HERE / ".runs" / "full"
#: The contour offsets compared (in point steps along each line).
OFFSETS = (0.0, 0.5)
#: The methods whose masks are DP contours.
DP_METHODS = ("edpcnn", "edpcnn-softdp", "edpcnn-es")
#: The record of the DP on the true masks (no training).
TRUTH = "the DP on the true masks"


def key_of(run_dir: Path) -> str:
    """The study's record key of a run folder (``n=10_seed=0_edpcnn_it=500``)."""
    size, seed, *variant, iterations = run_dir.name.split("_")
    return "/".join((size, seed, "_".join(variant), iterations))


def score_run(run_dir: Path, record: dict, data) -> dict | None:
    """The run's validation Dice at each offset, or ``None`` when its ``best.pt`` is not the one
    its record was scored with (offset 0 must give the record's Dice)."""
    from lvseg.runs import load_run

    run = load_run(run_dir)
    method = run.config.method
    if method not in DP_METHODS:
        return None
    dice = {f"{o:g}": data.dice(method, run.unet,
                                dataclasses.replace(run.config.star, edge_offset=o))
            for o in OFFSETS}
    if abs(dice["0"] - record["evaluations"][method]["dice"]) > 1e-6:
        return None
    return {"key": record["key"], "size": record["size"], "seed": record["seed"],
            "variant": record["variant"], "method": method, "iteration": run.iteration,
            "dice": dice}


def score_truth(data) -> dict:
    """The star DP on the true validation masks (the study's resolution ceiling, pool 1,
    :func:`~benchmarks.acdc_ablation._data.truth_dice`) at each offset: where the contour of a
    perfect map belongs."""
    from benchmarks.acdc_ablation._data import truth_dice
    from lvseg.config import TrainConfig

    star = TrainConfig(method="edpcnn-es").star
    dice = {f"{o:g}": truth_dice(data, dataclasses.replace(star, edge_offset=o))
            for o in OFFSETS}
    return {"key": TRUTH, "size": 0, "seed": 0, "variant": TRUTH, "method": "dp-on-truth",
            "dice": dice}


def table(records: list[dict]) -> str:
    """Mean validation Dice per row and size at each offset, and the paired difference."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["variant"], r["size"]), []).append(r)
    lines = ["| row | images | runs (seeds) | Dice, offset 0 | Dice, offset 0.5 | "
             "difference (mean ± s.d., min … max) |", "|---|---|---|---|---|---|"]
    for (variant, size), rs in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        diffs = [r["dice"]["0.5"] - r["dice"]["0"] for r in rs]
        sd = f" ± {statistics.stdev(diffs):.3f}" if len(diffs) > 1 else ""
        seeds = ", ".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
        images = "none" if variant == TRUTH else size
        lines.append(f"| {variant} | {images} | {len(rs)} ({seeds}) | "
                     f"{statistics.mean(r['dice']['0'] for r in rs):.3f} | "
                     f"{statistics.mean(r['dice']['0.5'] for r in rs):.3f} | "
                     f"{statistics.mean(diffs):+.3f}{sd}, {min(diffs):+.3f} … {max(diffs):+.3f} |")
    every = [r["dice"]["0.5"] - r["dice"]["0"] for r in records if r["variant"] != TRUTH]
    if len(every) > 1:
        lines.append(f"| every trained run | | {len(every)} | | | {statistics.mean(every):+.3f} ± "
                     f"{statistics.stdev(every):.3f}, {min(every):+.3f} … {max(every):+.3f} |")
    return "\n".join(lines)


def rescore(argv: list[str] | None, doc: str, results: Path, runs: Path, truth_key: str,
            score_truth: Callable[[Any], dict], score_run: Callable[[Path, dict, Any], dict | None],
            table: Callable[[list[dict]], str]) -> int:
    """The command line of a re-scoring of the kept runs (this module's and ``_smoothing``'s):
    score the DP on the true masks (record ``truth_key``) and every kept DP run under ``runs``
    not yet in ``results`` (``--data-dir`` is asked for only then), then with ``--table`` print
    ``table`` of every record."""
    from benchmarks.acdc_ablation.__main__ import finished

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the ACDC training folder")
    parser.add_argument("--table", action="store_true", help="print the results table")
    args = parser.parse_args(argv)
    log = h.RunLog(results)
    study = {r["key"]: r for r in finished(HERE / "results", "acdc_ablation")}
    todo = [d for d in sorted(runs.glob("n=*")) if (d / "best.pt").is_file()
            and key_of(d) in study and key_of(d) not in log.done
            and study[key_of(d)]["method"] in DP_METHODS]
    left = bool(todo) or truth_key not in log.done
    if left and args.table and args.data_dir is None:
        print(f"({len(todo)} kept runs not scored yet: give --data-dir to score them)")
    elif left:
        if args.data_dir is None or not (args.data_dir / "patient001").is_dir():
            parser.error(f"--data-dir: expected the ACDC training folder (patient001, ...); "
                         f"got {args.data_dir}")
        from benchmarks.acdc_ablation._data import Data
        from benchmarks.acdc_ablation._study import FULL

        data = Data(args.data_dir, FULL)  # loaded once
        if truth_key not in log.done:
            log.add(score_truth(data))
        for run_dir in todo:
            rec = score_run(run_dir, study[key_of(run_dir)], data)
            if rec is not None:
                log.add(rec)
                print(rec["key"], rec["dice"], flush=True)
    if args.table:
        print(table(log.records))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Score the kept runs not yet in the results, then (``--table``) print the table."""
    return rescore(argv, __doc__, RESULTS, RUNS, TRUTH, score_truth, score_run, table)


if __name__ == "__main__":
    raise SystemExit(main())
