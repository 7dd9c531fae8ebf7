"""The ES-defaults exploration of issue #20: ``edpcnn-es`` on 10 ACDC images, one run at a time.

Each variant is the method table's ``edpcnn-es`` row with some of its parts replaced (the loss
of a training step, the ES options) and some ``lvseg train`` options; a run is
``lvseg train --method edpcnn-es --data acdc --split thesis --train-size 10`` with them, in its
own process. Finished runs (a ``done`` marker in their run directory) are skipped, so the script
resumes; each finished run appends one line to ``results/raw/es_defaults_exploration.jsonl``
(variant, seed, lr, sigma, samples, iterations, best validation Dice and its iteration, the
training's seconds, the validation curve). The first eight lines of that file (variants
``es_def``, ``es_lr3e3``, ``es_sig02``, ``es_600``) came from plain command lines before this
script existed; ``es_def`` and ``es_lr3e3`` are the variants ``baseline150`` and ``lr3e3_150``
here (whose run directories ``lr3e3_300`` extends).

Usage (one core; the runs are long, see README.md, 'ES at the defaults')::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/acdc_ablation/_es_defaults.py \\
        --runs /tmp/runs_es --data-dir ../shared/data/acdc/training \\
        huber300_s1 lr3e3_150_s2 lr3e3_300_s2

A run name is ``<variant>_s<seed>``; ``--list`` prints the variants.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch.nn.functional as F

from benchmarks import _lv_runs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "raw" / "es_defaults_exploration.jsonl"


def _index_loss(name: str):
    """A step loss on the smoothed DP indices against the true ones (``mse``, ``huber``, ``l1``)."""
    loss = {"mse": F.mse_loss, "huber": F.smooth_l1_loss, "l1": F.l1_loss}[name]

    def step(model, images, masks, centers, angles):
        out = model(images, centers, angles)
        truth = model.true_indices(masks, out.points)
        return loss(out.indices, truth.to(out.indices.dtype))

    return step


#: Every run's data augmentation: none, lvseg's default when the exploration ran (as options).
AUGMENT_BEFORE = _lv_runs.AUGMENT_BEFORE_OPTIONS
#: variant -> (replaced fields of the edpcnn-es row, ES keyword options, lvseg train options).
#: A row field ``extends`` names a shorter variant whose run (same seed) this one continues with
#: ``lvseg train --resume --iterations K``: the same run as a fresh one of K iterations.
#: The row's fields and the ES options are the values before this exploration's change of the
#: defaults, so that every variant stays what it was when the defaults move on.
VARIANTS: dict[str, tuple[dict, dict, list[str]]] = {
    "baseline150": ({"loss": "mse"}, {}, ["--iterations", "150", "--sigma", "0.1",
                                          "--samples", "10", "--lr", "1e-3"]),
    "huber300": ({"loss": "huber"}, {}, ["--iterations", "300", "--sigma", "0.1",
                                         "--samples", "10", "--lr", "1e-3"]),
    "ranks300": ({"loss": "mse"}, {"shaping": "centered_ranks"},  # not run yet
                 ["--iterations", "300", "--sigma", "0.1", "--samples", "10", "--lr", "1e-3"]),
    "lr3e3_150": ({"loss": "mse"}, {}, ["--iterations", "150", "--sigma", "0.1",
                                        "--samples", "10", "--lr", "3e-3"]),
    "lr3e3_300": ({"loss": "mse", "extends": "lr3e3_150"}, {}, ["--iterations", "300"]),
    "lr3e3_600": ({"loss": "mse", "extends": "lr3e3_300"}, {}, ["--iterations", "600"]),
    "pool4_300": ({"loss": "mse"}, {}, ["--iterations", "300", "--sigma", "0.1",
                                        "--samples", "10", "--lr", "1e-3", "--pool", "4"]),
}


def _patch(variant: str) -> None:
    """Replace the edpcnn-es row of the method table by the variant's (in this process)."""
    from diffbypass import ES
    from lvseg import methods

    row, es_options, _ = VARIANTS[variant]

    def estimator(config, generator):
        return ES(sigma=methods._sigma(config), samples=config.samples, generator=generator,
                  **es_options)

    fields = {"estimator": estimator}
    if "loss" in row:
        fields["loss"] = _index_loss(row["loss"])
    methods.METHODS["edpcnn-es"] = dataclasses.replace(methods.METHODS["edpcnn-es"], **fields)


def _one(variant: str, seed: int, out: Path, data_dir: str) -> int:
    """One run in this process (called by :func:`main` in a child process)."""
    from lvseg.cli import main as lvseg

    _patch(variant)
    options = VARIANTS[variant][2]
    if "extends" in VARIANTS[variant][0]:
        return lvseg(["train", "--method", "edpcnn-es", "--out", str(out), "--resume",
                      "--no-progress", *options])
    return lvseg(["train", "--method", "edpcnn-es", "--data", "acdc", "--data-dir", data_dir,
                  "--split", "thesis", "--train-size", "10", "--seed", str(seed),
                  "--no-progress", "--out", str(out), *AUGMENT_BEFORE, *options])


def _record(variant: str, seed: int, out: Path) -> dict:
    """The results line of a finished run, from its ``config.json`` and ``metrics.jsonl``."""
    config = json.loads((out / "config.json").read_text())
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    curve = [[e["iteration"], round(e["dice"], 4)] for e in events
             if e.get("event") == "validation"]
    best = max(curve, key=lambda c: c[1])
    seconds = [e for e in events if e.get("event") == "end"][-1]["seconds"]
    if (out / "prior_seconds").exists():  # an extended run: its base's seconds plus this
        # session's (from config.json, written at the start, to the last metrics line); the
        # trainer's own "end" seconds do not add up across a resume
        seconds = float((out / "prior_seconds").read_text()) + (
            (out / "metrics.jsonl").stat().st_mtime - (out / "config.json").stat().st_mtime)
    steps = sum(e["seconds"] for e in events if e.get("event") == "step")
    return {"variant": variant, "seed": seed, "method": "edpcnn-es", "train_size": 10,
            "iterations": config["iterations"], "lr": config["lr"], "sigma": config["sigma"],
            "samples": config["samples"], "best_dice": best[1], "best_iteration": best[0],
            "seconds": round(seconds, 1), "step_seconds": round(steps, 1),
            "validation_curve": curve}


def table() -> str:
    """The README's table: one row per variant, its seeds' best Dice (iteration), the mean and
    the seconds per run and per training step."""
    rows: dict[str, list[dict]] = {}
    for line in RESULTS.read_text().splitlines():
        record = json.loads(line)
        rows.setdefault(record["variant"], []).append(record)
    out = ["| variant | iterations | seeds | best Dice (iteration) per seed | mean | s / run | "
           "s / step |", "|---|---|---|---|---|---|---|"]
    for variant, records in rows.items():
        records.sort(key=lambda r: r["seed"])
        best = ", ".join(f"{r['best_dice']:.3f} ({r['best_iteration']})" for r in records)
        mean = sum(r["best_dice"] for r in records) / len(records)
        seconds = sum(r["seconds"] for r in records) / len(records)
        steps = [r["step_seconds"] / r["iterations"] for r in records if "step_seconds" in r]
        step = f"{sum(steps) / len(steps):.2f}" if steps else "–"
        out.append(f"| {variant} | {records[0]['iterations']} | "
                   f"{', '.join(str(r['seed']) for r in records)} | {best} | {mean:.3f} | "
                   f"{seconds:.0f} | {step} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="runs <variant>_s<seed>, in this order")
    parser.add_argument("--runs", default="/tmp/runs_es", help="folder of the run directories")
    parser.add_argument("--data-dir", help="the ACDC training folder (needed for runs)")
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--table", action="store_true", help="print the results table and exit")
    parser.add_argument("--one", nargs=3, metavar=("VARIANT", "SEED", "OUT"),
                        help=argparse.SUPPRESS)  # one run, in the child process
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in VARIANTS.items():
            print(name, *spec)
        return 0
    if args.table:
        print(table())
        return 0
    if args.names and args.data_dir is None:
        parser.error("runs need --data-dir (the ACDC training folder)")
    if args.one:
        return _one(args.one[0], int(args.one[1]), Path(args.one[2]), args.data_dir)
    for name in args.names:
        variant, _, seed = name.rpartition("_s")
        if variant not in VARIANTS or not seed.isdigit():
            parser.error(f"run {name!r}: expected <variant>_s<seed> with a variant of --list")
        out = Path(args.runs) / name
        if (out / "done").exists():
            continue
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        base = VARIANTS[variant][0].get("extends")
        if base is not None:
            source = Path(args.runs) / f"{base}_s{seed}"
            if not (source / "done").exists():
                print(f"{name}: run {source.name} first (it extends it)")
                continue
            shutil.copytree(source, out, ignore=shutil.ignore_patterns("done", "lvseg.lock"))
            (out / "prior_seconds").write_text(str(_record(base, int(seed), source)["seconds"]))
        with open(out.parent / f"{name}.log", "w") as log:
            status = subprocess.call([sys.executable, __file__, "--data-dir", args.data_dir,
                                      "--one", variant, seed, str(out)], stdout=log,
                                     stderr=subprocess.STDOUT, env=os.environ)
        if status != 0:
            print(f"{name}: failed ({status}); see {out.parent / (name + '.log')}")
            continue
        line = json.dumps(_record(variant, int(seed), out))
        with open(RESULTS, "a") as results:
            results.write(line + "\n")
        (out / "done").touch()
        print(line[:200], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
