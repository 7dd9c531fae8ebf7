"""EDPCNN's surrogate settings on long ACDC runs: how much the validation Dice swings late in a
run, for one noise sample and one surrogate fit step per iteration (lvseg's default before this
study) and for more fit steps (the default since), more samples or a smaller learning rate.

Writes ``benchmarks/lv_stability/results/lv_stability.json`` (the ``"table"``: per training-set
size and variant, mean ± s.d. over seeds of the best validation Dice and of the late
validations' mean and minimum; the per-seed rows; every run's validation curve; the
``"machine"``) and ``lv_stability.png`` (validation Dice against iteration, one panel per
training-set size, one line per run). Raw records: ``results/raw/lv_stability.jsonl``.

Method
------
The command a user types, in a fresh process per run: ``lvseg train --method edpcnn --data acdc
--data-dir <ACDC>/training --split thesis --train-size N --iterations 500 --val-every V --seed S
--augment none --no-progress`` plus the variant's options, every other option at its default
(StarSurrogate with 8 channels, Adam 1e-3, batch size 10; ``--augment none`` was the default
when the study ran, ``_runs.AUGMENT_BEFORE``). Variants: ``S1k1`` (``--fit-steps 1``: one noise
sample and one surrogate fit step per iteration, the default before this study), ``S1k3``
(``--fit-steps 3``), ``S3k1`` (``--samples 3 --fit-steps 1``), ``S1k1-lr3e-4`` (``--lr 3e-4
--fit-steps 1``).
Training sets: N = 10 slices (V = 50; seeds 0, 1, 2; ``S1k1`` and ``S1k3``) and N = all, the
slices of the 80 thesis-split training patients (V = 25; seed 0; all four variants). The
validation set is the thesis split's (patients whose number is divisible by 5), the same for
every run. One run at a time, single-threaded (``OMP_NUM_THREADS =
MKL_NUM_THREADS = NUMBA_NUM_THREADS = 1``, ``OMP_WAIT_POLICY=PASSIVE``). Per run, from its
``metrics.jsonl``: the validation curve; the best validation Dice and its iteration (what
``best.pt`` holds); the "late" validations, those after half the run (iteration > 250), with their
mean, minimum and sample s.d.; the largest fall of the Dice between two consecutive validations;
the median training-step seconds and the run's total seconds; the 1-minute load average at the
start and the end of the runs this study trained. A run directory finished elsewhere with the same
command (``"end"`` at iteration 500 and a ``config.json`` that agrees with the plan in method,
data, split, training-set size, iterations, validation interval, seed, fit steps, samples and
learning rate) is adopted as it is: its load average and commit are unknown (``null``), and the
JSON lists it under ``"adopted_runs"``. Table cells: mean ± sample s.d. over the seeds (number of
seeds).

Run ``python -m benchmarks.lv_stability`` from the repository root (resumable: a finished run
is never trained again; its duration: ``benchmarks/registry.py``), ``--quick`` (phantoms, seed
0, 4 iterations per variant; seconds) or ``--replot`` (the JSON and PNG from the raw records).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks.lv_stability._outputs import write
from benchmarks.lv_stability._runs import Run, train

ITERATIONS = 500
#: The data options of the full study, beside ``--data-dir``.
ACDC_DATA = ["--data", "acdc", "--split", "thesis"]
#: The study: training-set size -> (validation interval, seeds, variants).
PLAN = {10: (50, (0, 1, 2), ("S1k1", "S1k3")),
        "all": (25, (0,), ("S1k1", "S1k3", "S3k1", "S1k1-lr3e-4"))}  # fmt: skip
#: What ``--quick`` trains: 24 phantoms, 8 of them for training, 4 iterations, a validation
#: every 2, one and three fit steps.
QUICK_DATA = ["--data", "synthetic", "--synthetic-slices", "24"]
QUICK_PLAN = {8: (2, (0,), ("S1k1", "S1k3"))}
QUICK_ITERATIONS = 4


def plan(sizes: dict[int | str, tuple[int, tuple[int, ...], tuple[str, ...]]],
         iterations: int) -> list[Run]:  # fmt: skip
    """The runs in order: per size, per seed, each variant (so that a change of the machine's
    load hits every variant of a seed)."""
    return [Run(size, variant, seed, iterations, every)
            for size, (every, seeds, variants) in sizes.items()
            for seed in seeds for variant in variants]  # fmt: skip


def acdc_options(data_dir: Path) -> list[str]:
    """The data options of the full study; a ``SystemExit`` naming the folder if ACDC is absent."""
    return [*ACDC_DATA, "--data-dir", str(_lv_runs.acdc_training(data_dir, "lv_stability"))]


def main(argv: list[str] | None = None) -> None:
    p = H.parser(__doc__, "phantoms, seed 0, 4 iterations per variant (seconds)")
    p.add_argument("--data-dir", type=Path, default=_lv_runs.ACDC,
                   help="the ACDC folder (holds training/)")
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / ".runs",
                   help="run folders <work>/<key>/run (git-ignored .runs/ by default: they hold "
                        "ACDC-trained weights, never commit them); a finished run directory "
                        "copied there under its key is adopted, not trained again")
    args = p.parse_args(argv)
    path = H.result_file(args.out, "lv_stability", args.quick)
    runs = plan(QUICK_PLAN, QUICK_ITERATIONS) if args.quick else plan(PLAN, ITERATIONS)
    log = H.raw_log(args.out, path.stem)
    load = H.Load()
    if args.replot and not log.records:
        raise SystemExit(f"lv_stability: --replot found no raw records at {log.path}")
    if not args.replot:
        data = QUICK_DATA if args.quick else acdc_options(args.data_dir)
        todo = [run for run in runs if run.key not in log.done]
        for i, run in enumerate(todo):
            print(f"lv_stability: run {i + 1}/{len(todo)} {run.key}", flush=True)
            record = train(run, data, args.work.resolve() / run.key)
            log.add(record)
            print(f"  {'adopted' if record['adopted'] else 'trained'}: best Dice "
                  f"{record['best_dice']:.3f} at {record['best_iteration']}, late min "
                  f"{record['late_min']}", flush=True)
    config = {"quick": args.quick, "iterations": runs[0].iterations, "threads_per_run": 1,
              "data": QUICK_DATA if args.quick else [*ACDC_DATA, "--data-dir", "<ACDC>/training"],
              "plan": [{"key": r.key, "size": r.size, "variant": r.variant, "seed": r.seed,
                        "val_every": r.val_every} for r in runs]}  # fmt: skip
    keys = [run.key for run in runs]
    done = sorted((r for r in log.records if r["key"] in keys), key=lambda r: keys.index(r["key"]))
    write(path, done, len(runs), config, __doc__, load)


if __name__ == "__main__":
    main()
