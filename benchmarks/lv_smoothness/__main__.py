"""The star DP's smoothness penalty on ACDC: a learned lambda against fixed ones (issue #18).

EDPCNN (``lvseg --method edpcnn``, every ``TrainConfig`` default of the commit in each record
but ``--augment none``, the default when the study ran: :data:`AUGMENT_BEFORE`) trained with
the DP's smoothness penalty lambda fixed (``--smoothness``; 0 is the thesis' DP) or learned
with the U-Net through the bypass (``--learn-smoothness``, lambda = exp of a parameter trained
by the U-Net's Adam at ``smoothness_lr``, started at ``INITIAL_SMOOTHNESS``).

Method
------
Data: the ACDC training set (``../shared/data/acdc``, never committed), thesis split (validation
= patients whose number is divisible by 5: 372 images); training subsets of 10 and 50 images
(telescopic prefixes of one shuffle, seed 0); seeds 0, 1, 2 (initialisation, batch order,
jitter, surrogate noise). Iterations 500 at 10 images and 1000 at 50 (as ``acdc_ablation``),
validation Dice on all 372 images every 50 iterations; the score is the best checkpoint's
validation Dice (thesis model selection), with HD and ASSD of that checkpoint. The fixed values
span the scale where lambda changes the contours (``--scale``: ``results/lv_smoothness_scale.json``).
Runs in the order that informs first: 10 images (lambda 0, then learned, every seed; then the
fixed values), then 50 images in the same order.

Run ``python -m benchmarks.lv_smoothness`` (hours; resumable: rerun the same command, finished
runs are skipped and an interrupted one resumes from its ``last.pt`` in ``.runs/``).
``--workers`` Dask worker processes (1 thread each); ``--quick`` a smoke run on phantoms
(``lv_smoothness_quick.*``); ``--scale`` the lambda-scale probe; ``--replot`` rewrites the table
from ``results/raw/lv_smoothness.jsonl``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import dataclasses
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h
from benchmarks import _lv_runs as lv
from benchmarks import _schedule

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    """What the study trains: sizes, seeds, iterations per size, the fixed lambdas."""

    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    iterations: dict[int, int]
    fixed: tuple[float, ...]
    val_every: int
    quick: bool = False


#: Every run's data augmentation: none, lvseg's default when the study ran.
AUGMENT_BEFORE = lv.AUGMENT_BEFORE
#: The measurement (fixed values from ``results/lv_smoothness_scale.json``, in the order of their
#: 10-image Dice, best first, so that at 50 images the decisive comparison, learned against the
#: best fixed value, finishes first; the order decides only when a run starts).
FULL = Plan(sizes=(10, 50), seeds=(0, 1, 2), iterations={10: 500, 50: 1000},
            fixed=(0.3, 1.0, 0.1), val_every=50)
#: The smoke run on phantoms (the tests).
QUICK = Plan(sizes=(8,), seeds=(0,), iterations={8: 4}, fixed=(0.3,), val_every=2, quick=True)


@dataclass(frozen=True)
class Job:
    """One run: training size, seed, and the penalty (a fixed lambda, or ``None``: learned)."""

    size: int
    seed: int
    lam: float | None

    @property
    def variant(self) -> str:
        return "learned" if self.lam is None else f"lam={self.lam:g}"

    @property
    def key(self) -> str:
        return f"n={self.size}/seed={self.seed}/{self.variant}"


def jobs_of(plan: Plan) -> list[Job]:
    """The plan's runs, most informative first (see the module docstring)."""
    out = []
    for size in plan.sizes:
        out += [Job(size, s, lam) for s in plan.seeds for lam in (0.0, None)]
        out += [Job(size, s, lam) for lam in plan.fixed for s in plan.seeds]
    return out


def config_of(job: Job, plan: Plan, data_dir: Path | None) -> Any:
    """The job's ``TrainConfig``: the defaults, except the data, size, seed and penalty, and
    :data:`AUGMENT_BEFORE`."""
    from lvseg.config import TrainConfig
    from lvseg.star import StarConfig

    star = dict(n_lines=12, n_points=24, radius=24.0) if plan.quick else {}
    data = (dict(data="synthetic", synthetic_slices=24, unet_channels=4, unet_depth=2,
                 batch_size=4) if plan.quick else
            dict(data="acdc", data_dir=str(data_dir), split="thesis"))  # fmt: skip
    return TrainConfig(method="edpcnn", train_size=job.size, seed=job.seed, split_seed=0,
                       iterations=plan.iterations[job.size], val_every=plan.val_every,
                       checkpoint_every=plan.val_every, learn_smoothness=job.lam is None,
                       star=StarConfig(**star, smoothness=job.lam or 0.0), **AUGMENT_BEFORE,
                       **data)  # fmt: skip


def _data(plan: Plan, data_dir: Path | None) -> Any:
    from lvseg.prepare import prepare_data

    return prepare_data(dataclasses.replace(config_of(Job(plan.sizes[0], 0, 0.0), plan, data_dir),
                                            train_size=None))


def run_job(job: Job, plan: Plan, work: Path, data_dir: Path | None, threads: int) -> dict[str, Any]:
    """Train (or resume) one run in a Dask worker, evaluate its best checkpoint; its record."""
    import torch

    from lvseg.checkpoint import load_checkpoint, load_model_state
    from lvseg.data import telescopic_subsets
    from lvseg.methods import star_of
    from lvseg.train import Trainer

    torch.set_num_threads(threads)
    full = _schedule.worker_cache(f"lv_smoothness {data_dir} {plan!r}", lambda: _data(plan, data_dir))
    splits = dataclasses.replace(full, train=telescopic_subsets(full.train, [job.size], seed=0)[job.size])
    config = config_of(job, plan, data_dir)
    run = work / job.key.replace("/", "_")
    resume = (run / "last.pt").is_file()
    if not resume and run.exists():  # stopped before its first checkpoint
        shutil.rmtree(run)
    start = time.perf_counter()
    trainer = Trainer(config, run, resume=resume, data=splits)
    summary = trainer.fit()
    seconds = time.perf_counter() - start
    curve = [{k: e[k] for k in ("iteration", "dice", "smoothness") if k in e}
             for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
             if e["event"] == "validation"]  # fmt: skip
    load_model_state(trainer.model, load_checkpoint(run / "best.pt"), run / "best.pt")
    star = star_of(trainer.model, config.star)
    t, idx = full.data.to_tensors(), full.val
    ev = lv.evaluation("edpcnn", trainer.unet, t["images"][idx], t["masks"][idx],
                       t["centers"][idx], star, full.data.spacing, per_image=False)
    now = lv.lvseg_commit()
    return {"key": job.key, "size": job.size, "seed": job.seed, "variant": job.variant,
            "lam": star.smoothness, "learned": job.lam is None,
            "best_iteration": summary["best_iteration"], "best_val_dice": summary["best_dice"],
            "evaluation": ev, "curve": curve, "resumed": resume,
            "seconds_this_session": round(seconds, 1), "train_config": config.to_dict(),
            "lvseg_commit": now["commit"],
            "lvseg_uncommitted_changes": now["lvseg_uncommitted_changes"]}  # fmt: skip


def table(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Mean and s.d. over seeds of the best validation Dice, per size and variant; the learned
    lambdas; the best fixed lambda per size (on the mean)."""
    out: dict[str, Any] = {}
    for size in plan.sizes:
        rows: dict[str, Any] = {}
        for variant in ["lam=0", "learned", *(f"lam={v:g}" for v in plan.fixed)]:
            rs = sorted((r for r in records if r["size"] == size and r["variant"] == variant),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            d = [r["best_val_dice"] for r in rs]
            rows[variant] = {"dice_mean": float(np.mean(d)),
                             "dice_sd": float(np.std(d, ddof=1)) if len(d) > 1 else None,
                             "seeds": [r["seed"] for r in rs], "dice_per_seed": d,
                             "lam_per_seed": [r["lam"] for r in rs]}  # fmt: skip
        fixed = {k: v for k, v in rows.items() if k != "learned"}
        best = max(fixed, key=lambda k: fixed[k]["dice_mean"]) if fixed else None
        out[str(size)] = {"rows": rows, "best_fixed": best}
    return out


def as_table(summary: dict[str, Any]) -> dict[str, Any]:
    """:func:`table`'s summary as the results convention's ``{"columns", "rows"}`` table."""
    columns = ["training images", "lambda", "validation Dice (mean)", "s.d.", "seeds",
               "lambda per seed"]
    rows = [[size, variant, round(r["dice_mean"], 4),
             "-" if r["dice_sd"] is None else round(r["dice_sd"], 4), len(r["seeds"]),
             ", ".join(f"{lam:.3g}" for lam in r["lam_per_seed"])]
            for size, part in summary.items() for variant, r in part["rows"].items()]  # fmt: skip
    return {"columns": columns, "rows": rows}


def write(records: list[dict[str, Any]], plan: Plan, out: Path, stem: str) -> None:
    """``results/<stem>.json``: the table, the plan, the machine, every record."""
    h.write_result(out / f"{stem}.json", {
        "study": "lv_smoothness", "method": h.method_text(__doc__),
        "plan": {**dataclasses.asdict(plan), "jobs": [j.key for j in jobs_of(plan)]},
        "finished": len(records), "planned": len(jobs_of(plan)),
        "table": as_table(table(records, plan)), "summary": table(records, plan), "machine": lv.machine(h.Load(), records),
        **lv.commits_of(records, lv.lvseg_commit()), "records": records,
    }, echo=False)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "smoke run on phantoms (lv_smoothness_quick.*)", replot=False)
    p.add_argument("--replot", action="store_true", help="rewrite the table from the JSONL")
    p.add_argument("--scale", action="store_true", help="the lambda-scale probe (ACDC)")
    lv.add_run_options(p, ROOT / ".runs", workers=1)
    args = p.parse_args(argv)
    plan = QUICK if args.quick else FULL
    stem = "lv_smoothness_quick" if args.quick else "lv_smoothness"
    data_dir = None if args.quick else (args.data_dir / "training").resolve()
    if not args.replot and data_dir is not None and not data_dir.is_dir():
        raise SystemExit(f"ACDC not found at {data_dir} (see ../shared/data/acdc/README.md); "
                         "--quick runs on phantoms")
    work = (args.work / ("quick" if args.quick else "full")).resolve()
    if args.scale:
        from benchmarks.lv_smoothness._scale import scale

        print(json.dumps(scale(data_dir, work, args.out), indent=2))
        return
    log = h.raw_log(args.out, stem)
    if not args.replot:
        work.mkdir(parents=True, exist_ok=True)
        tasks = [_schedule.Task(j.key, run_job, (j, plan, work, data_dir, args.threads))
                 for j in jobs_of(plan)]

        def progress(rec: dict[str, Any]) -> None:
            print(f"{rec['key']}: Dice {rec['best_val_dice']:.4f} (lambda {rec['lam']:.4g})",
                  file=sys.stderr, flush=True)
            write(h.RunLog(log.path).records, plan, args.out, stem)

        _schedule.run(tasks, log, args.scheduler, args.workers, on_record=progress)
    write(h.RunLog(log.path).records, plan, args.out, stem)


if __name__ == "__main__":
    main()
