"""Augmentation on the demo data: ``make demo``'s runs under each ``--augment`` preset and under
each part of ``standard`` alone, over seeds: test Dice, and which EDPCNN runs fall to the rim.

Writes ``benchmarks/lv_stability/results/demo_augment.json`` (the ``"table"``: mean test Dice
over the seeds per row, EDPCNN, U-Net and U-Net+DP, and augmentation, with the seeds' values;
``"falls"``: the runs that fell per method and augmentation; every run's record and validation
curve; the ``"machine"``) and ``demo_augment.png`` (test Dice per augmentation and row; EDPCNN's
validation curves). Raw records, one per finished run: ``results/raw/demo_augment.jsonl``.

Method
------
The demo's commands (``examples/demo.py``, ``make demo``) on the bundled Sunnybrook sample:
``lvseg train --method M --data sunnybrook --train-size 10 --iterations K --val-every 25 --seed S
--augment A --no-progress`` for M = ``edpcnn`` (K = 150) and ``unet`` (K = 200), lvseg's defaults
for the demo when this module was written (``edpcnn``'s are 1000 since issue #20; the demo pins
the old 150), pinned so that the plan does not move with them;
every other option at lvseg's default. Ten training slices of SCD0000301, validation Dice every
25 iterations on the slices of SCD0000101 (``best.pt``: the best), then ``lvseg evaluate RUN
--split test`` on the slices of SCD0000201 (the U-Net's run also with ``--dp``, the demo's
U-Net+DP row): the test Dice is that command's mean over the test slices, inside the star's
square, as the demo reports it. Augmentations A: lvseg's presets ``none``, ``standard`` (flips,
rotation, scaling, gamma, contrast, brightness) and ``noflip`` (``standard`` without the flips),
and each part of ``standard`` alone with ``standard``'s ranges: ``flips``, ``geometry``
(rotation and scaling) and ``intensity`` (gamma, contrast, brightness), registered as presets
in the child process (``_demo_runs.PARTS``). Seeds 0-3. Per run: the test Dice (and through the
DP for the U-Net), the best validation Dice and its iteration, the validation curve, ``at_rim``
of the last validation (validation images whose DP contour lies at the star's rim on most
lines, ``lvseg.score.Scores.at_rim``; none for the U-Net, validated without the DP), whether the
run fell (``at_rim`` on more than half the validation images, lvseg's ``RimWarning`` rule,
``_demo_runs.fell``), the seconds of ``lvseg train`` (wall time, its start-up and the DP's
compilation included, as the demo times it) and of the evaluations, the torch threads and the
1-minute load average at the start and the end of the run. Each run's commands run in a fresh process
with ``--threads`` torch threads (2 by default, as ``make demo`` on the project's 2-core
machine), one run at a time, per seed each augmentation and method in turn. Table cells: the
mean over the seeds, with each seed's value.

Run ``python -m benchmarks.lv_stability._demo_augment`` from the repository root (48 runs,
resumable: a run in the raw records is never trained again), ``--quick`` (seed 0, 2 iterations,
all runs in one process; about a minute) or ``--replot`` (the JSON and PNG from the raw records).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from benchmarks import _harness as H
from benchmarks._lv_runs import child_env
from benchmarks.lv_stability._demo_outputs import write
from benchmarks.lv_stability._demo_runs import METHODS, PRESETS, RECORD, DemoRun, child

#: The demo's iterations per method (lvseg's defaults when this module was written).
ITERATIONS = {"edpcnn": 150, "unet": 200}
VAL_EVERY = 25
SEEDS = (0, 1, 2, 3)
#: What ``--quick`` trains: seed 0, 2 iterations, a validation after each, one lvseg preset and
#: one part (registered in the child) so that ``make test`` stays short.
QUICK = {"iterations": 2, "val_every": 1, "seeds": (0,), "presets": ("noflip", "flips")}
STUDY = "demo_augment"


def plan(quick: bool) -> list[DemoRun]:
    """The runs in order: per seed, per augmentation, each method (so that a change of the
    machine's load hits every augmentation of a seed)."""
    seeds, presets = (QUICK["seeds"], QUICK["presets"]) if quick else (SEEDS, PRESETS)
    return [DemoRun(m, preset, seed, QUICK["iterations"] if quick else ITERATIONS[m],
                    QUICK["val_every"] if quick else VAL_EVERY)
            for seed in seeds for preset in presets for m in METHODS]  # fmt: skip


def run_children(todo: list[DemoRun], work: Path, threads: int, per_process: int,
                 log: H.RunLog) -> None:  # fmt: skip
    """Train ``todo``, ``per_process`` runs per child process, adding each record to ``log``
    as the child prints it (so that a stop loses at most the run in progress). A child's
    standard error goes to ``work/<first key>.log``. Nothing to do: no child."""
    if not todo:
        return
    done = 0
    for i in range(0, len(todo), per_process):
        batch = todo[i:i + per_process]
        cmd = [sys.executable, "-m", "benchmarks.lv_stability._demo_augment", "--work",
               str(work), "--child", json.dumps([asdict(r) for r in batch])]  # fmt: skip
        work.mkdir(parents=True, exist_ok=True)
        errors = work / f"{batch[0].key}.log"
        with errors.open("w", encoding="utf-8") as err:
            proc = subprocess.Popen(cmd, env=child_env(threads), cwd=H.REPO, stdout=subprocess.PIPE,
                                    stderr=err, text=True)  # fmt: skip
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(RECORD):
                    record = json.loads(line[len(RECORD):])
                    log.add(record)
                    done += 1
                    print(f"{STUDY}: {done}/{len(todo)} {record['key']}: test Dice "
                          f"{record['test_dice']:.3f}, best validation {record['best_dice']:.3f}"
                          f" at {record['best_iteration']}, fell {record['fell']}", flush=True)
        if proc.wait():
            raise SystemExit(f"{STUDY}: the child for {', '.join(r.key for r in batch)} failed "
                             f"(exit {proc.returncode}); its log: {errors}")


def main(argv: list[str] | None = None) -> None:
    p = H.parser(__doc__, "seed 0, 2 iterations per run, all in one process (about a minute)")
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / ".runs" / STUDY,
                   help="run folders <work>/<key>/run (git-ignored .runs/ by default)")
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads per run (default 2, as make demo on 2 cores)")
    p.add_argument("--child", help=argparse.SUPPRESS)  # one child process's runs, as JSON
    args = p.parse_args(argv)
    if args.child:
        return child([DemoRun(**r) for r in json.loads(args.child)], args.work.resolve())
    if args.threads < 1:
        p.error(f"--threads must be a positive integer; got {args.threads}")
    path = H.result_file(args.out, STUDY, args.quick)
    runs, log, load = plan(args.quick), H.raw_log(args.out, path.stem), H.Load()
    if args.replot and not log.records:
        raise SystemExit(f"{STUDY}: --replot found no raw records at {log.path}")
    if not args.replot:
        todo = [run for run in runs if run.key not in log.done]
        run_children(todo, args.work.resolve(), args.threads, len(todo) if args.quick else 1,
                     log)  # fmt: skip
    keys = [run.key for run in runs]
    done = sorted((r for r in log.records if r["key"] in keys), key=lambda r: keys.index(r["key"]))
    config = {"quick": args.quick, "threads": args.threads, "presets": list(QUICK["presets"] if args.quick else PRESETS),
              "methods": list(METHODS), "seeds": sorted({r.seed for r in runs}),
              "iterations": {r.method: r.iterations for r in runs},
              "val_every": runs[0].val_every}  # fmt: skip
    write(path, done, len(runs), config, __doc__, load)


if __name__ == "__main__":
    main()
