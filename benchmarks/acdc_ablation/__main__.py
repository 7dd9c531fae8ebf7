"""Reproducing the thesis on ACDC: Table 5.1, the jitter study (Fig. 5.4), the learning curves
(Fig. 5.5) and the ES ablation (Figs. 5.8/5.9), with two label-free baselines.

Writes ``benchmarks/acdc_ablation/results/acdc_ablation.json`` (the side-by-side ``"table"``, the jitter table,
the plan, the ``TrainConfig`` defaults and commit of every run, the machine, one record per run
with its validation curve), ``acdc_ablation_seconds.json`` (the seconds of a run beside the
table), ``acdc_ablation_issue20.json`` (issue #20's comparison at 10 / 20 / 50 images, with the
differences its targets name), ``acdc_ablation.png`` and, while it runs, ``acdc_ablation.jsonl``
(one line per finished run, rewritten atomically). A restart skips the finished runs and resumes
the interrupted one from its last checkpoint (``lvseg.train.Trainer(resume=True)``; run folders
in ``benchmarks/acdc_ablation/.runs/``, never committed: they are trained on ACDC).

Method
------
Data: the ACDC training set (``../shared/data/acdc``, never committed) with the thesis split
(``lvseg --split thesis``: validation = patients whose number is divisible by 5): 1436 training
and 372 validation images, preprocessed by ``lvseg`` (1.37 mm, 128 x 128 crop around the LV).
Training subsets of 10, 20, 50, 100 and 200 images are telescopic prefixes of one fixed shuffle
(``telescopic_subsets``, shuffle seed 0); seed k (model initialisation, batch order, centre
jitter, estimator noise) runs 2 seeds up to 50 images and 1 above.

Methods: every ``TrainConfig`` default of the commit in each record (``train_config``: batch 10,
Adam, the CPU-sized U-Net, surrogate/ES settings, jitter and rotation; no data augmentation but
in the augmented rows, lvseg's default when the study started, ``_study.AUGMENT_BEFORE``;
EDPCNN-old: the surrogate setting before issue #9, StarSurrogate with S = 10 and 2 fit steps),
except the iterations
(500 / 600 / 1000 / 1500 / 2000 at 10 / 20 / 50 / 100 / 200 images, the same for every method at
a size; the thesis ran 20000) and the validation period K (every 50 iterations for edpcnn, the
thesis' value; every 100 for the cheaper unet and ES iterations, so that validating all 372
images costs at most about 15 % of a run). Model selection as in the thesis: the validation Dice
every K iterations, and the best checkpoint's Dice is the score; U-Net+DP (the U-Net's
probability minus 1/2 through the star DP) is selected on its own validation Dice along the same
unet run. ES-hi is edpcnn-es as lvseg defines it; ES-lo is the same with the DP's input averaged
over blocks of 4 points along each line (``StarConfig.pool = 4``: 25 x 17 = 425 values reach ES
instead of 25 x 65 = 1625), lvseg's documented stand-in for the thesis' unpadded U-Net. ES runs
at 10 to 100 images, first seed. U-Net and EDPCNN, augmented: the same with ``--augment
standard`` (``lvseg.augment``: flips, rotation, scaling, gamma, contrast and brightness of each
training batch, the LV centre moved with the image), at 10, 20 and 50 images, every seed.
The relaxation control (issue #20), EDPCNN-softDP: the same U-Net, star, jitter, rotation, data and iterations, trained through the relaxed DP
(``edpcnn-softdp``: cross-entropy of ``soft_dp``'s marginals against the true indices, no
bypass), evaluated with the hard DP like every DP method; its temperature is chosen on
validation: a grid (``softdp-t<T>``, ``_study.TEMPERATURES``, 10 images, first seed) runs first
and every ``softdp`` run (10 / 20 / 50 images, every seed) trains with the grid's best (a Dask
dependency; the record's ``chosen_from`` lists the grid's Dice, its ``train_config`` the
temperature).
Semi-supervised rows (issue #20; 10, 20 and 50 images, first
seed): the same runs with ``--unlabelled 10``, ten images per iteration from the rest of the
training split with their labels hidden (``lvseg.teacher``: an EMA teacher; EDPCNN learns from
the teacher's DP contours through the bypass, the U-Net from its probabilities), the other
settings at the defaults.

Baselines without training: the star DP on the output map of an untrained U-Net (the edpcnn
initialisation of that seed), and a disc of the mean equivalent radius sqrt(area / pi) of the
training subset's LV masks, centred at the given centre. Scores: mean Dice over the validation
images inside the star's square, star at the LV centre of mass (lvseg evaluate protocol); the
table gives mean ± s.d. over seeds (runs in brackets) and the thesis' number in square brackets.
Fig. 5.4: the best edpcnn model at 10 and 100 images, test centres jittered inside the object
(``jitter_centers``, s.d. 0 to 0.5 of the object radius, generator seed 1234). Fig. 5.5: at each
validation, the Dice on (up to 50 of) the training images with true centres.

Machine: the project's shared 2-core CPU, torch and numba single-threaded, the load average in
each record. The seconds of a run (``acdc_ablation_seconds.json``) are its iterations times its
median seconds per training step, validations excluded: a resumed run's record times only its
last session. ``--measure`` times a few iterations of every variant and one validation, and
prints the plan's cost before running.

Run ``python -m benchmarks.acdc_ablation`` (hours; resumable: rerun the same command). The runs
are tasks on a Dask ``LocalCluster`` of ``--workers`` processes (default 2, one per core, 1 thread
each) or, with ``--scheduler ADDRESS``, on a running Dask cluster; this process is the only
writer of ``raw/acdc_ablation.jsonl``. ``--measure``, ``--quick`` (a smoke run on 40 validation
images: ``acdc_ablation_quick.*``, its tables written once, at the end; the full study rewrites
them after every finished run) or ``--replot``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import _harness as h
from benchmarks import _lv_runs as lv
from benchmarks import _schedule
from benchmarks.acdc_ablation._data import Data, baselines, ceilings, config_of, jitter, jitter_delta
from benchmarks.acdc_ablation._outputs import write
from benchmarks.acdc_ablation._study import (EVALUATED, FULL, QUICK, VARIANTS, Job, Plan, after_of,
                                             chosen, jobs_of)
from lvseg.checkpoint import load_checkpoint, load_model_state
from lvseg.config import TrainConfig
from lvseg.train import Trainer

ROOT = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------- one run
def train_job(job: Job, data: Data, plan: Plan, work: Path, data_dir: Path,
              after: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Train (or resume) one variant, select the best checkpoint, evaluate; returns the record.

    ``after``: the records of :func:`~benchmarks.acdc_ablation._study.after_of` (the
    temperature grid of a ``softdp`` run)."""
    config = config_of(job, plan, data_dir, chosen(job, after))
    splits = data.splits(job.size)
    run = work / job.key.replace("/", "_")
    resume = (run / "last.pt").is_file()
    if not resume and run.exists():  # stopped before its first checkpoint: nothing to resume
        shutil.rmtree(run)
    trainer = Trainer(config, run, resume=resume, data=splits)
    names = EVALUATED[job.variant]
    curve_file = run / "curve.jsonl"
    curve = [json.loads(x) for x in curve_file.read_text().splitlines()] if resume else []
    curve = [c for c in curve if c["iteration"] < trainer.iteration]
    steps: list[float] = []
    train_idx = splits.train[: plan.train_curve_images]

    def hook(t: Trainer, event: dict[str, Any]) -> None:
        if event["event"] == "step":
            steps.append(event["seconds"])
        if event["event"] != "validation":
            return
        val = {names[0]: event["dice"]}
        if "unet-dp" in names:  # U-Net+DP is selected on its own validation Dice
            val["unet-dp"] = data.dice("unet-dp", t.unet, config.star)
            if val["unet-dp"] > max([c["val"]["unet-dp"] for c in curve], default=-1):
                torch.save(t.unet.state_dict(), run / "unet_dp_best.pt")
        train = data.dice(names[0], t.unet, config.star, train_idx)
        curve.append({"iteration": event["iteration"], "val": val, "train": train})
        h.atomic_write(curve_file, "".join(json.dumps(c) + "\n" for c in curve))

    trainer.add_hook(hook)
    load = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    summary = trainer.fit()
    train_s = time.perf_counter() - start
    load_model_state(trainer.model, load_checkpoint(run / "best.pt"), run / "best.pt")
    evals = {names[0]: data.evaluate(names[0], trainer.unet, config.star)}
    if "unet-dp" in names:
        trainer.unet.load_state_dict(torch.load(run / "unet_dp_best.pt", weights_only=True))
        evals["unet-dp"] = data.evaluate("unet-dp", trainer.unet, config.star)
    rec: dict[str, Any] = {
        "key": job.key, "size": job.size, "seed": job.seed, "variant": job.variant,
        "method": config.method, "iterations": job.iterations, "val_every": config.val_every,
        "best_iteration": summary["best_iteration"], "curve": curve, "evaluations": evals,
        "resumed": resume, "train_seconds_this_session": round(train_s, 1),
        "seconds_per_iteration_median": round(float(np.median(steps)), 4) if steps else None,
        "overhead_seconds_this_session": round(train_s - sum(steps), 1),
        "load_average_start": load, "load_average_end": round(os.getloadavg()[0], 2),
        "train_config": config.to_dict(),
    }  # fmt: skip
    if after:  # what the settings were chosen from
        rec["chosen_from"] = {r["key"]: r["evaluations"][names[0]]["dice"] for r in after}
    if job.variant in ("edpcnn", "edpcnn-old") and job.size in plan.jitter_sizes:
        load_model_state(trainer.model, load_checkpoint(run / "best.pt"), run / "best.pt")
        rec["jitter_dice"] = jitter(data, trainer.unet, config, plan)
    return rec


# ---------------------------------------------------------------------------- plan cost
def measure(data: Data, plan: Plan, work: Path, data_dir: Path) -> dict[str, Any]:
    """Seconds per iteration of each variant (3 after 1 warm-up, 10 images) and per validation;
    prints the plan's projected cost."""
    per, val = {}, {}
    for variant in VARIANTS:
        config = config_of(Job(10, 0, variant, 10), plan, data_dir)
        tmp = tempfile.TemporaryDirectory(prefix="acdc_measure_")
        trainer = Trainer(config, Path(tmp.name) / "run", data=data.splits(10))
        trainer.step()
        per[variant] = float(np.median([trainer.step()["seconds"] for _ in range(3)]))
        start = time.perf_counter()
        trainer.validate()
        if variant == "unet":
            data.dice("unet-dp", trainer.unet, config.star)
        val[variant] = time.perf_counter() - start
        trainer._lock.release()  # no fit(): release the run folder's lock, then remove it
        tmp.cleanup()
    total = 0.0
    for job in jobs_of(plan):
        if job.variant in VARIANTS:
            total += job.iterations * (per[job.variant] + val[job.variant] /
                                       min(plan.val_every[job.variant], job.iterations))
    for v in VARIANTS:
        share = val[v] / (val[v] + plan.val_every[v] * per[v])
        print(f"{v:7s} {per[v]:.3f} s/iteration, validation {val[v]:.1f} s every "
              f"{plan.val_every[v]} iterations ({100 * share:.0f} % of a run)", file=sys.stderr)
    print(f"plan: {len(jobs_of(plan))} jobs, about {total / 3600:.1f} h of training and "
          f"validation (baselines, jitter and final evaluations: minutes)", file=sys.stderr)
    return {"seconds_per_iteration": per, "validation_seconds": val, "plan_hours": total / 3600}


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "smoke run (acdc_ablation_quick.*)", replot=False)
    p.add_argument("--replot", action="store_true", help="redraw JSON and PNG from the JSONL")
    p.add_argument("--measure", action="store_true", help="time iterations, print the cost")
    lv.add_run_options(p, ROOT / ".runs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    stem = "acdc_ablation_quick" if args.quick else "acdc_ablation"
    args.out.mkdir(parents=True, exist_ok=True)
    study(args, plan, stem)


def finished(out: Path, stem: str) -> list[dict[str, Any]]:
    """The records of the run log ``stem.jsonl`` and of the per-worker logs ``stem.1.jsonl``, ...
    that the study wrote before it ran on Dask."""
    paths = [out / "raw" / f"{stem}.jsonl", *sorted(out.glob(f"raw/{stem}.[0-9]*.jsonl"))]
    return [r for p in paths for r in h.RunLog(p).records]


def run_job(job: Job, plan: Plan, work: Path, data_dir: Path, threads: int,
            *after: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """One job of the plan, in a Dask worker (the data loaded once per worker); its record.

    ``after``: the records of the runs it needs (:func:`~benchmarks.acdc_ablation._study.after_of`):
    the edpcnn run a ``jitter-delta`` job evaluates, the temperature grid of a ``softdp`` run.
    """
    torch.set_num_threads(threads)
    data = _schedule.worker_cache(f"acdc {data_dir} {plan!r}", lambda: Data(data_dir, plan))
    start = time.perf_counter()
    if job.variant == "baselines":
        rec = baselines(job, data, plan, data_dir)
    elif job.variant == "ceilings":
        rec = ceilings(job, data)
    elif job.variant.startswith("jitter-delta"):
        rec = jitter_delta(job, data, plan, work, data_dir,
                           int(job.variant.removeprefix("jitter-delta")))
        if rec is None:
            raise FileNotFoundError(f"{job.key}: the edpcnn run it evaluates is finished but "
                                    f"has no best.pt under {work}")
    else:
        rec = train_job(job, data, plan, work, data_dir, list(after))
    now = lv.lvseg_commit()
    rec["lvseg_commit"] = now["commit"]
    rec["lvseg_uncommitted_changes"] = now["lvseg_uncommitted_changes"]
    rec["wall_seconds_this_session"] = round(time.perf_counter() - start, 1)
    return rec


def study(args: Any, plan: Plan, stem: str) -> None:
    """Run (or, with ``--measure``, cost) the plan's unfinished jobs on Dask; write the outputs.

    A ``jitter-delta`` job waits for the edpcnn run it evaluates (a Dask dependency).
    """
    data_dir = (args.data_dir / "training").resolve()
    load, now = h.Load(), lv.lvseg_commit()
    defaults = TrainConfig(method="edpcnn").to_dict()

    def outputs() -> None:
        write(finished(args.out, stem), plan, args.out, stem, now, load, __doc__, defaults)

    if not args.replot:
        if not data_dir.is_dir():
            raise SystemExit(f"ACDC not found at {data_dir} (see ../shared/data/acdc/README.md)")
        work = (args.work / ("quick" if args.quick else "full")).resolve()
        if args.measure:
            measure(Data(data_dir, plan), plan, work, data_dir)
            return
        work.mkdir(parents=True, exist_ok=True)
        jobs = jobs_of(plan)
        tasks = []
        for job in jobs:
            tasks.append(_schedule.Task(job.key, run_job,
                                        (job, plan, work, data_dir, args.threads),
                                        after_of(job, plan)))
        log = h.raw_log(args.out, stem)
        older = [r for r in finished(args.out, stem) if r["key"] not in log.done]
        count = [len(older) + len(log.records)]

        def progress(rec: dict[str, Any]) -> None:
            count[0] += 1
            dice = ", ".join(f"{m} {e['dice']:.3f}" for m, e in rec["evaluations"].items())
            print(f"[{count[0]}/{len(jobs)}] {rec['key']}: {dice}", file=sys.stderr, flush=True)
            if not args.quick:  # the full study's tables fill in as it runs; a smoke run's once
                outputs()

        _schedule.run(tasks, log, args.scheduler, args.workers, on_record=progress,
                      earlier=older)
    outputs()


if __name__ == "__main__":
    main()
