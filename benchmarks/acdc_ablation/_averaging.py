"""The weight-averaging exploration (``lvseg train --average D``): paired, on the study's runs.

One ``edpcnn`` run of the study's setting (``config_of``: 10 ACDC images, 500 iterations,
validation every 50) is trained once; beside it, EMAs of its U-Net's weights with the decays
``DECAYS`` follow every optimiser step with ``lvseg.averaging``'s warm-up
(:class:`~lvseg.averaging.WeightAverage`), and at every validation each average is scored on
the same 372 validation images as the trained weights. Each average sees exactly the
trajectory of the trained weights (training never reads an average), so the comparison is
paired: the same run with and without ``--average``, seed by seed, free of the run-to-run
noise of separate runs. Each finished run appends one line to
``results/raw/averaging.jsonl`` (size, seed, the validation curve of the trained weights and of
each average, the best of each, seconds).

Usage (one core; README.md, 'Weight averaging', gives the seconds a run took)::

    OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.acdc_ablation._averaging \\
        --data-dir ../shared/data/acdc/training --seeds 0 1 2

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


def run(size: int, seed: int, data: Any, data_dir: Path) -> dict:
    """Train the study's ``edpcnn`` run of ``size`` images and ``seed`` on ``data`` (the
    study's :class:`~benchmarks.acdc_ablation._data.Data`), scoring the averages."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, Job
    from lvseg.averaging import WeightAverage
    from lvseg.train import Trainer

    config = config_of(Job(size, seed, "edpcnn", FULL.iterations[size]), FULL, data_dir)
    with tempfile.TemporaryDirectory(prefix="acdc_averaging_") as tmp:
        trainer = Trainer(config, Path(tmp) / "run", data=data.splits(size))
        averages = {d: WeightAverage(trainer.model, d, warmup=True) for d in DECAYS}
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
    return {"size": size, "seed": seed, "variant": "edpcnn", "iterations": config.iterations,
            "val_every": config.val_every, "curve": curve,
            "best": {k: max(r[k] for r in curve) for k in names}, "seconds": round(seconds, 1)}


def table(records: list[dict]) -> str:
    """Best validation Dice per seed of the trained weights and of each average, their mean,
    and the mean over every validation of a run (how steady the curve is)."""
    names = ["trained", *(f"{d:g}" for d in DECAYS)]
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
    parser.add_argument("--table", action="store_true", help="print the results table")
    args = parser.parse_args(argv)
    records = ([json.loads(x) for x in RESULTS.read_text().splitlines()]
               if RESULTS.is_file() else [])
    done = {(r["size"], r["seed"]) for r in records}
    todo = [seed for seed in args.seeds if (args.size, seed) not in done]
    if todo and (args.data_dir is None or not (args.data_dir / "patient001").is_dir()):
        parser.error(f"--data-dir: expected the ACDC training folder (patient001, ...); "
                     f"got {args.data_dir}")
    data = None
    for seed in todo:
        if data is None:  # loaded once, for every seed
            from benchmarks.acdc_ablation._data import Data
            from benchmarks.acdc_ablation._study import FULL

            data = Data(args.data_dir, FULL)
        records.append(run(args.size, seed, data, args.data_dir))
        h.atomic_write(RESULTS, "".join(json.dumps(r) + "\n" for r in records))
    if args.table:
        print(table([r for r in records if r["size"] == args.size]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
