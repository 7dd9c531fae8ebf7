"""Pareto front of the EDPCNN surrogate settings: validation Dice against seconds per iteration.

Writes ``benchmarks/lv_pareto/results/lv_pareto.json`` (a ``"table"``: variant, seconds per iteration and
its ratio to the U-Net's, ACDC and Sunnybrook Dice as mean ± s.d. over seeds; the Pareto front;
the method, machine and every run) and ``lv_pareto.png``; while it runs, the run log
``raw/lv_pareto.runs.jsonl`` (one line per finished run, ``_harness.RunLog``).

Method
------
Variants: EDPCNN with every TrainConfig default except the surrogate knobs each variant names:
exploration samples S, fit steps per iteration k and the surrogate (StarSurrogate, the thesis'
small U-Net on the star, or LineSurrogate, line-wise convolutions circular across the lines;
both 8 channels). "old" is the setting before issue #9 (S = 10, k = 2, StarSurrogate(8)).
Every run without data augmentation (``--augment none``, the default when the study ran:
:data:`AUGMENT_BEFORE`).

Cost: seconds per training iteration, ``lvseg.train.Trainer.step()`` on the bundled Sunnybrook
sample (train_size 10, batch 10), torch and numba single-threaded, every variant and the U-Net
timed interleaved (one iteration of each in turn; 3 warm-up, then 15 timed iterations each), so
that the machine's load hits all alike; the median, and its ratio to the U-Net's median.

Quality: ACDC (``../shared/data/acdc``, never committed), thesis split (validation: the 372
images of the patients whose number is divisible by 5), the first 50 training images of the
telescopic shuffle (split seed 0), 100 iterations (what the study's time allowed on the
loaded machine), the Dice on all 372 validation images at iterations 50 and 100 and the best
of those 2 checkpoints as the score (the thesis' model selection). Seeds 0, 1, 2; seeds 0-11
for the old setting and the default, compared seed by seed (same initialisation, batches and
noise seeds): mean difference, its standard error, 95 % t interval and paired t-test.
Second check: the bundled Sunnybrook sample, lvseg's defaults (train_size 10, 150 iterations,
validation every 25), seeds 0, 1, 2, the test Dice of the best checkpoint (patient SCD0000201,
``lvseg evaluate --split test``), for the new default only: the old setting's is the table of
``docs/lv_example.md`` measured with the same protocol (0.873 / 0.849 / 0.850). The runs are
tasks on a Dask cluster (``--workers`` single-threaded processes, 2 on the 2-core machine);
a restart skips the finished runs.

Run ``python -m benchmarks.lv_pareto`` (about 45 minutes on the shared 2-core CPU with 2
workers; ``--scheduler ADDRESS`` for a running Dask cluster), then ``--measure`` and ``--report``; ``--quick`` is a
smoke run (20 iterations, 1 seed, 40 validation images, ``lv_pareto_quick.*``).
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h
from benchmarks import _lv_runs as lv
from benchmarks import _schedule
from benchmarks.lv_pareto._report import paired_difference, plot
from benchmarks.lv_pareto._timing import step_seconds

ROOT = Path(__file__).resolve().parent
#: name -> TrainConfig overrides of the method edpcnn (the surrogate knobs).
VARIANTS: dict[str, dict[str, Any]] = {
    "S10 k2 star (old)": {"samples": 10, "fit_steps": 2, "surrogate": "star"},
    "S4 k1 line": {"samples": 4, "fit_steps": 1, "surrogate": "line"},
    "S2 k1 line": {"samples": 2, "fit_steps": 1, "surrogate": "line"},
    "S1 k1 line": {"samples": 1, "fit_steps": 1, "surrogate": "line"},
    "S2 k1 line, 200 it": {"samples": 2, "fit_steps": 1, "surrogate": "line", "iterations": 200},
    "S2 k1 star": {"samples": 2, "fit_steps": 1, "surrogate": "star"},
    "S1 k1 star": {"samples": 1, "fit_steps": 1, "surrogate": "star"},
    "S2 k1 line, lr 3e-3": {"samples": 2, "fit_steps": 1, "surrogate": "line",
                            "surrogate_lr": 3e-3},
    # narrower star surrogates (issue #22, item 18: the training cost a user sees)
    "S1 k1 star c6": {"samples": 1, "fit_steps": 1, "surrogate": "star", "surrogate_channels": 6},
    "S1 k1 star c4": {"samples": 1, "fit_steps": 1, "surrogate": "star", "surrogate_channels": 4},
}
#: Every run's data augmentation (and the timed steps'): none, lvseg's default when the study ran.
AUGMENT_BEFORE = lv.AUGMENT_BEFORE
#: variant -> the variant whose finished run it continues (a copy, resumed with more iterations).
EXTENDS = {"S2 k1 line, 200 it": "S2 k1 line"}
SEEDS = (0, 1, 2)
OLD = "S10 k2 star (old)"
DEFAULT = "S1 k1 star"  # lvseg's TrainConfig defaults since issue #9
#: Sunnybrook test Dice of the old setting, seeds 0-2 (docs/lv_example.md, the same protocol).
OLD_SUNNYBROOK_TEST = (0.873, 0.849, 0.850)
DATASETS = {"acdc": {"train_size": 50, "iterations": 100, "val_every": 50},
            "sunnybrook": {"train_size": 10, "iterations": 150, "val_every": 25}}


def config_of(variant: str, data: str, seed: int, quick: bool) -> Any:
    from lvseg.config import TrainConfig

    plan = dict(DATASETS[data])
    knobs = dict(VARIANTS[variant])
    if "iterations" in knobs:
        plan["iterations"] = knobs.pop("iterations")
    if quick:
        plan.update(iterations=20 * plan["iterations"] // DATASETS[data]["iterations"],
                    val_every=10)
    extra = {"data_dir": str(lv.ACDC / "training"), "split": "thesis"} if data == "acdc" else {}
    return TrainConfig(method="edpcnn", data=data, seed=seed, split_seed=0,
                       checkpoint_every=plan["val_every"], **plan, **extra, **AUGMENT_BEFORE,
                       **knobs)


def jobs(quick: bool, datasets: tuple[str, ...] = tuple(DATASETS),
         variants: tuple[str, ...] = tuple(VARIANTS),
         seeds: tuple[int, ...] = SEEDS) -> list[tuple[str, str, int]]:
    """The plan's runs ``(dataset, variant, seed)``: ACDC first, a variant after the one it
    extends."""
    seeds = seeds[:1] if quick else seeds
    return [(d, v, s) for d in datasets for s in seeds for v in variants
            if d != "sunnybrook" or v == DEFAULT]  # the old one's is in lv_example.md


def key_of(dataset: str, variant: str, seed: int) -> str:
    """A run's key in the run logs."""
    return f"{dataset}/{variant}/seed{seed}"


def run_one(dataset: str, variant: str, seed: int, quick: bool, work: Path,
            *after: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) one run in a Dask worker; its record. A variant that extends another
    (``EXTENDS``) starts from a copy of that run's folder (``after``: that run's record)."""
    import torch

    from lvseg.prepare import prepare_data
    from lvseg.train import Trainer

    torch.set_num_threads(1)
    key = key_of(dataset, variant, seed)
    config = config_of(variant, dataset, seed, quick)

    def load() -> Any:
        data = prepare_data(config)
        return dataclasses.replace(data, val=data.val[:40]) if quick else data

    data = _schedule.worker_cache(f"lv_pareto {dataset} {quick}", load)
    run = work / key.replace("/", "_").replace(" ", "_").replace(",", "")
    if variant in EXTENDS and not run.exists():
        base = work / f"{dataset}_{EXTENDS[variant]}_seed{seed}".replace(" ", "_")
        if not (base / "last.pt").is_file():
            raise FileNotFoundError(f"{key}: the run it extends has no {base / 'last.pt'}")
        shutil.copytree(base, run, ignore=shutil.ignore_patterns("lvseg.lock"))
    resume = (run / "last.pt").is_file()
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    trainer = Trainer(config, run, resume=resume, data=data)
    summary = trainer.fit()
    test = None
    if dataset == "sunnybrook":  # the protocol of the table in docs/lv_example.md
        from lvseg.evaluate import evaluate_run

        test = evaluate_run(run, split="test")["dice"]
    return {"key": key, "dataset": dataset, "variant": variant, "seed": seed,
            "iterations": config.iterations, "train_size": config.train_size,
            "val_images": len(data.val), "best_dice": summary["best_dice"],
            "best_iteration": summary["best_iteration"], "test_dice": test,
            "seconds": round(time.perf_counter() - t0, 1), "resumed": resume,
            "load_average_start": round(load0, 2),
            "load_average_end": round(os.getloadavg()[0], 2), "commit": h.git_commit()}


def run_plan(args: Any, datasets: tuple[str, ...], variants: tuple[str, ...],
             seeds: tuple[int, ...] = SEEDS) -> None:
    """Run the plan's runs (:func:`jobs`) that no log has yet, on Dask (``benchmarks._schedule``).

    A run on a subset of datasets, variants or seeds writes its own log (each record names its
    dataset, variant and seed); the runs of every log in ``raw/`` count as finished.
    """
    stem = h.result_file(args.out, "lv_pareto", args.quick).stem
    part = "runs" if datasets == tuple(DATASETS) else "-".join(datasets)
    if variants != tuple(VARIANTS):
        part += "." + "-".join(re.sub(r"[^a-z0-9]+", "", v.lower()) for v in variants)
    if seeds != SEEDS:
        part += ".seeds" + "-".join(map(str, seeds))
    log = h.raw_log(args.out, f"{stem}.{part}")
    older = [r for p in sorted(args.out.glob(f"raw/{stem}.*.jsonl")) if p != log.path
             for r in h.RunLog(p).records]  # fmt: skip
    done = {r["key"] for r in older} | log.done
    work = ROOT / ".runs"  # never committed (ACDC-trained weights)
    plan = jobs(args.quick, datasets, variants, seeds)
    keys = {key_of(*j) for j in plan}
    tasks = []
    for dataset, variant, seed in plan:
        after = ()
        if variant in EXTENDS:
            after = (key_of(dataset, EXTENDS[variant], seed),)
            if after[0] not in keys | done:
                print(f"{key_of(dataset, variant, seed)}: {after[0]} is neither finished nor "
                      "in this plan; skipped", file=sys.stderr)
                continue
        tasks.append(_schedule.Task(key_of(dataset, variant, seed), run_one,
                                    (dataset, variant, seed, args.quick, work), after))

    def progress(rec: dict[str, Any]) -> None:
        print(f"{rec['key']}: Dice {rec['best_dice']:.4f}", file=sys.stderr, flush=True)

    _schedule.run(tasks, log, args.scheduler, args.workers, on_record=progress, earlier=older)


def measure(warmup: int = 3, repeats: int = 15) -> dict[str, Any]:
    """Interleaved ``Trainer.step()`` seconds of the U-Net and every variant (1 thread)."""
    from lvseg.config import TrainConfig

    configs = {"unet": TrainConfig(method="unet", **AUGMENT_BEFORE)}
    configs.update({v: TrainConfig(method="edpcnn", **AUGMENT_BEFORE, **kw)
                    for v, kw in VARIANTS.items()
                    if v not in EXTENDS})  # the same iterations as the variant it extends
    return step_seconds(configs, warmup, repeats)


def report(out: Path, quick: bool) -> None:
    path = h.result_file(out, "lv_pareto", quick)
    stem = path.stem
    records = [r for p in sorted(out.glob(f"raw/{stem}.*.jsonl")) for r in h.RunLog(p).records]
    # one record per run: a process that found a run finished by another only reloaded it
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["key"] not in best or r["seconds"] > best[r["key"]]["seconds"]:
            best[r["key"]] = r
    records = list(best.values())
    timing = json.loads(path.with_suffix(".timing").read_text(encoding="utf-8"))
    unet = timing["step_s"]["unet"]["median"]
    rows, points = [], []
    for v in VARIANTS:
        step = timing["step_s"].get(EXTENDS.get(v, v))
        if step is None:  # not timed (a partial report)
            continue
        sec = step["median"]
        its = VARIANTS[v].get("iterations", DATASETS["acdc"]["iterations"])
        row: list[Any] = [v, round(sec, 3), round(sec / unet, 2), round(its * sec / unet)]
        for d in DATASETS:
            score = "test_dice" if d == "sunnybrook" else "best_dice"
            dice = [r[score] for r in records if r["variant"] == v and r["dataset"] == d]
            if d == "sunnybrook" and v == OLD:
                dice = list(OLD_SUNNYBROOK_TEST)
            row += [round(float(np.mean(dice)), 4) if dice else None,
                    round(float(np.std(dice, ddof=1)), 4) if len(dice) > 1 else None, len(dice)]
        rows.append(row)
        if row[4] is not None and v not in EXTENDS:  # the front at equal iterations
            points.append((sec, row[4], v))
    front = [v for s, d, v in points if not any(s2 <= s and d2 >= d and (s2, d2) != (s, d)
                                                for s2, d2, _ in points)]
    paired = paired_difference(records, DEFAULT, OLD)
    cols = ["variant", "s/iter", "x U-Net", "ACDC run (U-Net its)", "ACDC val. Dice", "sd", "n",
            "Sunnybrook test Dice", "sd", "n"]
    data = {"benchmark": "lv_pareto", "title": "EDPCNN surrogate settings: Dice against s/iter",
            "method": h.method_text(__doc__), "variants": VARIANTS, "plan": DATASETS,
            "machine": h.machine_info(), "table": {"columns": cols, "rows": rows},
            "pareto_front_acdc": front, "paired_acdc_default_minus_old": paired,
            "timing": timing, "runs": records}
    h.write_result(path, data)
    plot(data, path.with_suffix(".png"))


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "smoke run: 20 iterations, 1 seed, 40 validation images")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS),
                   help="only these datasets' runs (their own log files)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   help="only these variants' runs (their own log files)")
    p.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                   help="only these seeds' runs (their own log files)")
    p.add_argument("--measure", action="store_true", help="time the variants (1 thread)")
    p.add_argument("--report", action="store_true", help="write the JSON/PNG from the logs")
    _schedule.add_options(p)
    args = p.parse_args(argv)
    path = h.result_file(args.out, "lv_pareto", args.quick)
    if h.replot(args.replot, path, plot):
        return
    if args.measure:
        result = measure(1, 3) if args.quick else measure()
        h.atomic_write(path.with_suffix(".timing"), json.dumps(
            {**result, "machine": h.machine_info(), "commit": h.git_commit()}, indent=1))
    elif args.report:
        report(args.out, args.quick)
    else:
        run_plan(args, tuple(args.datasets), tuple(args.variants), tuple(args.seeds))


if __name__ == "__main__":
    main()
