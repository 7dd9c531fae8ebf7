"""LV segmentation ablation: Dice against training-set size for unet, unet-dp, edpcnn, edpcnn-es.

Writes ``benchmarks/lv_ablation/results/lv_ablation.json`` (a ``"table"``, the ``"method"``, ``"machine"``,
``"config"`` and one record per training run), ``lv_ablation.png`` (Dice against training-set
size, one panel per dataset, error bars) and, while it runs, ``lv_ablation.jsonl``: one line per
finished training run, rewritten atomically after every run. A restarted script reads it and
skips every run already there, so a crash loses at most the run in progress.

Method
------
Datasets and splits:

* ``sunnybrook``: the bundled sample, 3 patients and 56 annotated slices. Patient-level folds:
  each patient is the test set once, and the training pool is the slices of the two other
  patients (36 to 38). Telescopic training subsets of 5, 10 and 20 slices and ``all`` (the whole
  pool) are nested prefixes of one shuffle of the pool (``telescopic_subsets``, shuffle seed =
  the fold number). No checkpoint is selected: the model after the last iteration is evaluated,
  so the test patient is never looked at before the end, and no validation set is needed.
* ``synthetic``: ``lvseg`` phantoms. The training pool is ``make_phantoms(1000, seed=1)``; the
  fixed test set is ``make_phantoms(200, seed=2)`` (other anatomies: a phantom patient is a
  seed and an index group, 8 slices each). Training subsets of 10, 30, 100, 300 and 1000 are
  telescopic prefixes of one shuffle of the pool per seed. Again the last model is evaluated.

Methods: ``unet``, ``edpcnn`` and ``edpcnn-es`` are trained with ``lvseg.train.Trainer`` and
every ``TrainConfig`` default of the commit in ``"lvseg_commit"`` (batch size 10, Adam lr 1e-3,
the CPU-sized U-Net, StarSurrogate with S = 10 samples and 2 fit steps, ES with S = 10
antithetic samples, centre jitter and rotation, no data augmentation, ...; the JSON's
``config``; lvseg's defaults have moved on since, e.g. ``--augment standard``), except the
number of iterations, which is the same for every method at a given dataset and size (the
``iterations`` column). ``unet-dp`` is not trained: it is the trained ``unet`` evaluated with
the star DP on its probability map minus 1/2 (``lvseg.segment.segment(method="unet-dp")``, what
``lvseg evaluate --dp`` does).

Evaluation follows ``lvseg.evaluate.evaluate_run``: the star is centred at the LV's centre of
mass, and the Dice score of every test slice is computed inside the square that holds the star
(``lvseg.metrics.evaluate_batch``). A run's score is its mean Dice over the test slices. The
table gives, per dataset, size and method, the mean and standard deviation of that score over
the runs (folds for Sunnybrook, seeds for the phantoms) and the number of runs.

Seeds: fold ``k`` (test patient ``k`` in sorted order) and phantom seed ``k`` use ``seed = k``
for the model initialisation, batch order, centre jitter, surrogate noise and the telescopic
shuffle.

Budget: the whole default run has to fit in 50 minutes of wall time on the project's shared
2-core CPU machine, single-threaded (``torch.set_num_threads(1)`` and ``NUMBA_NUM_THREADS=1``:
the other core stays free for other work). Measured before the run (``--measure``): about
0.3-0.5 s per U-Net or EDPCNN-ES iteration and 1.1-1.5 s per EDPCNN iteration (batch 10, 2
surrogate fit steps). That buys 60 iterations per run (the thesis: 20000; the ``lvseg``
defaults: 150-200 with best-checkpoint selection) for the 12 Sunnybrook configurations and 8
phantom ones (2 seeds at 10, 30 and 100 images, 1 at 300 and 1000). At 60 iterations of 10
images, the models see 600 training images: the 1000-image subset is not even seen once.
``--budget-min`` (50) stops before a run that would end after the budget (from the time of
earlier runs of that method); the runs are ordered Sunnybrook, phantoms' first seed, phantoms'
second seed, so a cut loses the second seeds first. The JSON records every run's seconds per
iteration and the load average.

Run ``python -m benchmarks.lv_ablation`` (37 minutes in the recorded run; more on a busier
machine), ``--quick`` (a smoke run of under a minute: one fold, two sizes, 3 iterations, written
as ``lv_ablation_quick.*``), ``--replot`` (redraw the JSON and PNG from the JSONL) or
``--measure``.
"""

from __future__ import annotations

import os

# Spinning OpenMP threads waiting for a busy core slow training down a lot on a shared machine
# (as in the lvseg command). Read when torch starts its thread pool: set before importing it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # the star DP's thread pool: single-threaded too

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import _harness as h
from benchmarks import _lv_runs as lv
from benchmarks.lv_ablation._study import FULL, QUICK, TRAINED, Job, Plan, jobs_of, write_outputs
from lvseg.config import TrainConfig
from lvseg.data import (
    CROP_SIZE,
    SPACING_MM,
    load_dataset,
    preprocess,
    split_from_lists,
    telescopic_subsets,
)
from lvseg.data.preprocessing import PreparedData
from lvseg.prepare import PreparedSplits
from lvseg.train import Trainer



# ---------------------------------------------------------------------------- data
class Datasets:
    """Loads each dataset once and builds the training/test splits of the jobs."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._cache: dict[str, Any] = {}

    def _prepared(self, name: str, **kwargs: Any) -> PreparedData:
        key = f"{name}{sorted(kwargs.items())}"
        if key not in self._cache:
            slices, _ = load_dataset(name, **kwargs)  # type: ignore[arg-type]
            self._cache[key], _ = preprocess(slices, spacing=SPACING_MM, size=CROP_SIZE)
        return self._cache[key]

    def splits(self, job: Job) -> PreparedSplits:
        """The training subset (``train``) and the test set (``test``); no validation set."""
        empty = np.zeros(0, dtype=np.int64)
        if job.dataset == "sunnybrook":
            data = self._prepared("sunnybrook")
            patients = sorted(set(data.patient_ids))
            test = patients[job.seed]
            others = [p for p in patients if p != test]
            split = split_from_lists(data.patient_ids, train=others, val=[], test=[test])
            size = len(split.train) if job.size == "all" else int(job.size)
            train = telescopic_subsets(split.train, [size], seed=job.seed)[size]
            return PreparedSplits(data, train, empty, split.test, split.patients, "sunnybrook")
        pool = self._prepared("synthetic", n=self.plan.synthetic_pool, seed=1)
        test = self._prepared("synthetic", n=self.plan.synthetic_test, seed=2)
        data = _concat(pool, test)
        train = telescopic_subsets(np.arange(len(pool)), [int(job.size)], seed=job.seed)
        test_idx = np.arange(len(pool), len(data), dtype=np.int64)
        return PreparedSplits(data, train[int(job.size)], empty, test_idx, {}, "synthetic")


def _concat(a: PreparedData, b: PreparedData) -> PreparedData:
    return PreparedData(
        images=np.concatenate([a.images, b.images]), masks=np.concatenate([a.masks, b.masks]),
        centers=np.concatenate([a.centers, b.centers]), radii=np.concatenate([a.radii, b.radii]),
        patient_ids=a.patient_ids + b.patient_ids, sources=a.sources + b.sources,
        slice_indices=np.concatenate([a.slice_indices, b.slice_indices + len(a)]),
        spacing=a.spacing,
    )  # fmt: skip


# ---------------------------------------------------------------------------- one run
def run_job(job: Job, datasets: Datasets) -> dict[str, Any]:
    """Train one model, evaluate it on the test set; returns the run's record."""
    splits = datasets.splits(job)
    config = TrainConfig(
        method=job.method, data=job.dataset, train_size=len(splits.train), seed=job.seed,
        split_seed=job.seed, iterations=job.iterations, val_every=job.iterations,
        checkpoint_every=job.iterations,
    )  # fmt: skip
    load_start = round(os.getloadavg()[0], 2)
    losses: list[float] = []
    seconds: list[float] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lv_ablation_") as tmp:
        trainer = Trainer(config, Path(tmp) / "run", data=splits)

        def record(_: Trainer, event: dict[str, Any]) -> None:
            if event["event"] == "step":
                losses.append(float(event["loss"]))
                seconds.append(float(event["seconds"]))

        trainer.add_hook(record)
        trainer.fit()
        train_s = time.perf_counter() - start
        idx = splits.test
        t = splits.data.subset(idx).to_tensors()
        evals = {method: lv.evaluation(method, trainer.unet, t["images"], t["masks"],
                                       t["centers"], config.star, splits.data.spacing)
                 for method in TRAINED[job.method]}  # fmt: skip
    tail = losses[-5:]
    return {
        "key": job.key, "dataset": job.dataset, "split": job.split, "seed": job.seed,
        "size": job.size, "n_train": int(len(splits.train)), "trained_method": job.method,
        "iterations": job.iterations, "train_seconds": round(train_s, 2),
        "seconds_per_iteration_median": round(float(np.median(seconds)), 4),
        "loss_first": losses[0], "loss_last5_mean": float(np.mean(tail)),
        "test_patients": list(splits.patients.get("test", ())),
        "eval_seconds": round(time.perf_counter() - start - train_s, 2),
        "load_average_start": load_start, "load_average_end": round(os.getloadavg()[0], 2),
        "evaluations": evals,
    }  # fmt: skip


# ---------------------------------------------------------------------------- main
def measure(datasets: Datasets, plan: Plan) -> dict[str, float]:
    """Median seconds per training iteration of each trained method (Sunnybrook, 10 images)."""
    per = {}
    for method in TRAINED:
        job = Job("sunnybrook", "fold0", 0, 10, method, 4)
        splits = datasets.splits(job)
        config = TrainConfig(method=method, seed=0, iterations=4)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(config, Path(tmp) / "run", data=splits)
            trainer.step()
            per[method] = float(np.median([trainer.step()["seconds"] for _ in range(3)]))
    total_it = sum(j.iterations for j in jobs_of(plan) if j.method == "unet")
    projected = total_it * sum(per.values())
    print(f"seconds per iteration: {per}; plan: {total_it} iterations per method, "
          f"about {projected / 60:.1f} min of training", file=sys.stderr)  # fmt: skip
    return per


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "smoke run (lv_ablation_quick.*)", replot=False)
    p.add_argument("--replot", action="store_true", help="redraw JSON and PNG from the JSONL")
    p.add_argument("--measure", action="store_true", help="time iterations, print the cost")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--budget-min", type=float, default=50.0,
                   help="start no run that would end after this many minutes (default 50)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    stem = "lv_ablation_quick" if args.quick else "lv_ablation"
    log = h.raw_log(args.out, stem)
    load, start = h.Load(), time.perf_counter()
    datasets = Datasets(plan)
    meta = {"threads": args.threads, "lvseg_commit": lv.lvseg_commit(),
            "defaults": TrainConfig(method="edpcnn").to_dict()}  # fmt: skip
    if args.measure:
        measure(datasets, plan)
        return
    records = log.records
    if not args.replot:
        done = log.done
        jobs = jobs_of(plan)
        for k, job in enumerate(jobs):
            if job.key in done:
                continue
            same = [r["train_seconds"] + r["eval_seconds"] for r in records
                    if r["trained_method"] == job.method and r["dataset"] == job.dataset
                    and r["iterations"] == job.iterations]  # fmt: skip
            if same and time.perf_counter() - start + max(same) > 60 * args.budget_min:
                print(f"budget: {job.key} and later runs not started", file=sys.stderr)
                break
            rec = run_job(job, datasets)
            rec["lvseg_commit"] = meta["lvseg_commit"]["commit"]
            rec["lvseg_uncommitted_changes"] = meta["lvseg_commit"]["lvseg_uncommitted_changes"]
            log.add(rec)
            dice = ", ".join(f"{m} {e['dice']:.3f}" for m, e in rec["evaluations"].items())
            print(f"[{k + 1}/{len(jobs)} {time.perf_counter() - start:7.0f} s] {job.key}: "
                  f"{dice} ({rec['train_seconds']:.0f} s, load {rec['load_average_end']})",
                  file=sys.stderr, flush=True)  # fmt: skip
        meta["complete"] = all(j.key in log.done for j in jobs)
    meta["runtime_s"] = round(sum(r["train_seconds"] + r["eval_seconds"] for r in records), 1)
    meta["machine"] = lv.machine(load, records)
    meta["lvseg_commit"] = lv.commits_of(records, meta["lvseg_commit"])
    if args.replot:
        meta["complete"] = all(j.key in log.done for j in jobs_of(plan))
        old = args.out / f"{stem}.json"
        if old.exists():  # keep the machine data of the run, not of the replot
            meta["machine"] = h.read_result(old)["machine"]
    write_outputs(records, args.out, stem, plan, meta)


if __name__ == "__main__":
    main()
