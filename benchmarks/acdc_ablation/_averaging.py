"""The weight-averaging exploration (``lvseg train --average D``): paired, on the study's runs.

One run of a study row (``--variant``, default ``edpcnn``; ``config_of``: 10 ACDC images, the
plan's 500 iterations unless ``--iterations``, validation every 50) is trained once; beside it,
EMAs of its U-Net's weights with the decays ``--decays`` (default ``DECAYS``) follow every optimiser step with ``lvseg.averaging``'s warm-up
(:class:`~lvseg.averaging.WeightAverage`), and at every validation each average is scored on
the same 372 validation images as the trained weights. Each average sees exactly the
trajectory of the trained weights (training never reads an average), so the comparison is
paired: the same run with and without ``--average``, seed by seed, free of the run-to-run
noise of separate runs. Each finished run appends one line to
``results/raw/averaging.jsonl`` (size, seed, variant, iterations, the validation curve of the
trained weights and of each average, the best of each, seconds); a seed whose record exists for
the same size, variant and iterations is skipped.

Usage (one core; README.md, 'Weight averaging', gives the seconds a run took)::

    OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.acdc_ablation._averaging \\
        --data-dir ../shared/data/acdc/training --seeds 0 1 2
    # lvseg's defaults, 1000 iterations (README.md, "lvseg's defaults at 1000 iterations"):
    ... --variant edpcnn-aug-noflip-edge --iterations 1000 --decays 0.99 0.997 --seeds 0 1 2

``--table`` prints the table of ``README.md``, "Weight averaging".
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness as h

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "raw" / "averaging.jsonl"
#: The EMA decays scored beside the trained weights.
DECAYS = (0.9, 0.97, 0.99)


def run(size: int, seed: int, data: Any, data_dir: Path, variant: str = "edpcnn",
        iterations: int | None = None, decays: tuple[float, ...] = DECAYS) -> dict:
    """Train the study's ``variant`` run of ``size`` images and ``seed`` on ``data`` (the
    study's :class:`~benchmarks.acdc_ablation._data.Data`) for ``iterations`` (default: the
    plan's for ``size``), scoring the averages of ``decays``."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, Job
    from lvseg.averaging import WeightAverage
    from lvseg.train import Trainer

    job = Job(size, seed, variant, iterations or FULL.iterations[size])
    config = config_of(job, FULL, data_dir)
    with tempfile.TemporaryDirectory(prefix="acdc_averaging_") as tmp:
        trainer = Trainer(config, Path(tmp) / "run", data=data.splits(size))
        averages = {d: WeightAverage(trainer.model, d, warmup=True) for d in decays}
        curve: list[dict] = []

        def hook(t: Trainer, event: dict) -> None:
            if event["event"] == "step":
                for average in averages.values():
                    average.update(t.model, event["iteration"])
            elif event["event"] == "validation":
                row = {"iteration": event["iteration"], "trained": event["dice"]}
                for d, average in averages.items():
                    row[f"{d:g}"] = data.dice("edpcnn", average.unet, average.star(config.star))
                curve.append(row)

        trainer.add_hook(hook)
        start = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - start
    names = [k for k in curve[0] if k != "iteration"]
    return {"size": size, "seed": seed, "variant": variant, "iterations": config.iterations,
            "val_every": config.val_every, "curve": curve,
            "best": {k: max(r[k] for r in curve) for k in names}, "seconds": round(seconds, 1)}


def table(records: list[dict]) -> str:
    """Best validation Dice per seed of the trained weights and of each average, their mean,
    and the mean over every validation of a run (how steady the curve is)."""
    names = [k for k in records[0]["best"]]
    lines = ["| weights | best Dice per seed | mean of the best | mean over validations |",
             "|---|---|---|---|"]
    for name in names:
        best = [r["best"][name] for r in records]
        every = [statistics.mean(c[name] for c in r["curve"]) for r in records]
        label = "trained (no average)" if name == "trained" else f"EMA, decay {name}"
        lines.append(f"| {label} | {' / '.join(f'{b:.3f}' for b in best)} | "
                     f"{statistics.mean(best):.3f} | {statistics.mean(every):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the seeds not yet in the results (skipping finished ones), then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="the ACDC training folder (for runs)")
    parser.add_argument("--size", type=int, default=10, help="training images (default 10)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="seeds to run")
    parser.add_argument("--variant", default="edpcnn",
                        help="the study's row to train (_variants.REGISTRY; default edpcnn)")
    parser.add_argument("--iterations", type=int, help="default: the plan's for --size")
    parser.add_argument("--decays", type=float, nargs="+", default=list(DECAYS),
                        help=f"EMA decays to score (default {' '.join(map(str, DECAYS))})")
    parser.add_argument("--table", action="store_true", help="print the results table")
    args = parser.parse_args(argv)
    records = ([json.loads(x) for x in RESULTS.read_text().splitlines()]
               if RESULTS.is_file() else [])
    from benchmarks.acdc_ablation._study import FULL

    iterations = args.iterations or FULL.iterations[args.size]
    key = (args.size, args.variant, iterations)
    mine = [r for r in records if (r["size"], r["variant"], r["iterations"]) == key]
    todo = [seed for seed in args.seeds if seed not in {r["seed"] for r in mine}]
    if todo and (args.data_dir is None or not (args.data_dir / "patient001").is_dir()):
        parser.error(f"--data-dir: expected the ACDC training folder (patient001, ...); "
                     f"got {args.data_dir}")
    data = None
    for seed in todo:
        if data is None:  # loaded once, for every seed
            from benchmarks.acdc_ablation._data import Data

            data = Data(args.data_dir, FULL)
        record = run(args.size, seed, data, args.data_dir, args.variant, iterations,
                     tuple(args.decays))
        records.append(record)
        mine.append(record)
        h.atomic_write(RESULTS, "".join(json.dumps(r) + "\n" for r in records))
    if args.table and mine:
        print(table(mine))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
