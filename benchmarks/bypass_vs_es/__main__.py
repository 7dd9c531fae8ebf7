"""The bypass against ES at their defaults, at equal training-step seconds and at equal DP
evaluations: ``lvseg train --method edpcnn`` and ``--method edpcnn-es`` on ACDC.

Writes ``benchmarks/bypass_vs_es/results/bypass_vs_es.json`` (the ``"table"``, the per-seed
comparison, every run's step seconds, DP counts and validation Dice, the ``"machine"`` with the
load average) and ``bypass_vs_es.png`` (best validation Dice so far against step seconds and
against DP evaluations, one line per method and seed). Raw records:
``results/raw/bypass_vs_es.jsonl``.

Method
------
The command a user types, in a fresh process per run: ``lvseg train --method M --data acdc
--data-dir <ACDC>/training --split thesis --train-size 10 --val-every 25 --seed S`` with every
other option at its default (the bypass: 150 iterations, its default when the results ran, 500
since issue #20, Adam 1e-3, one surrogate sample; ES: 300 iterations, Adam 3e-3, σ 0.1, 10
samples), started through ``_child.py`` (the unchanged
``lvseg.cli.main`` plus a DP counter), single-threaded (``OMP_NUM_THREADS = MKL_NUM_THREADS =
NUMBA_NUM_THREADS = 1``, ``OMP_WAIT_POLICY=PASSIVE``), one run at a time, seeds 0, 1, 2 with
the two methods interleaved (bypass seed 0, ES seed 0, bypass seed 1, ...) so that a change of
the machine's load hits both. No warm-up run: each run is a fresh process, as a user's is, and
its start-up (imports, data, the numba cache) is outside the clock. The clock is the wall time
of each training step (``Trainer.step``: batch, forward with the DP, loss, backward with the
estimator's DP calls, Adam), the ``seconds`` of the ``step`` events in ``metrics.jsonl``, and
its process CPU time (``_child.py``; less moved by other programs on a shared machine);
validation (every 25 iterations, the same images and cost for both methods) and checkpoints are
left out. DP evaluations are counted, not assumed: ``_child.py`` wraps the black box's ``fn``
and adds the batch size of every call made inside a training step (one image through the DP is
one evaluation), and checks this count against diffbypass's own ``BlackBox.instances``; per
image, it is divided by the images of the step's batch (10: the training set). For each
run, the best validation Dice reached by a budget is the maximum over the validations whose
cumulative step seconds (or DP evaluations, or step CPU seconds) are within it, which is what
``best.pt`` would hold had the run been stopped there. Per seed: ES's best within the budget of
the bypass's whole run, and the bypass's within ES's (the bypass run is not extended: when
ES's budget is larger, the bypass's figure is that of its whole default run). Reported: mean ±
sample s.d. over the 3 seeds, the median seconds per step (wall and CPU), the counted DP
evaluations per image and iteration, and the 1-minute load average at the start and the end of
each run (the machine is shared).

Run ``python -m benchmarks.bypass_vs_es`` from the repository root (resumable: a finished run
folder, marked ``done``, is skipped; its duration: ``benchmarks/registry.py``) or ``--quick``
(phantoms, seed 0, 4 iterations each; seconds).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks.bypass_vs_es._outputs import plot, write
from benchmarks.bypass_vs_es._runs import METHODS, Run, train

SEEDS = (0, 1, 2)
#: What ``--quick`` trains: 24 phantoms, 4 iterations, a validation every 2.
QUICK_DATA = ["--data", "synthetic", "--synthetic-slices", "24", "--train-size", "8",
              "--val-every", "2"]  # fmt: skip
QUICK_ITERATIONS = 4


def plan(seeds: tuple[int, ...], iterations: int | None, longer: int | None) -> list[Run]:
    """The runs in order: per seed the bypass, then ES; then the longer runs, if any."""
    runs = [Run(m, s, iterations) for s in seeds for m in METHODS]
    return runs + ([Run(m, s, longer) for s in seeds for m in METHODS] if longer else [])


def acdc_options(data_dir: Path) -> list[str]:
    """The data options of the full study; a ``SystemExit`` naming the folder if ACDC is absent."""
    training = _lv_runs.acdc_training(data_dir, "bypass_vs_es")
    return ["--data", "acdc", "--data-dir", str(training), "--split", "thesis",
            "--train-size", "10", "--val-every", "25"]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = H.parser(__doc__, "phantoms, seed 0, 4 iterations per method (seconds)")
    p.add_argument("--data-dir", type=Path, default=_lv_runs.ACDC,
                   help="the ACDC folder (holds training/)")
    p.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / ".runs",
                   help="run folders (git-ignored .runs/ by default: they hold ACDC-trained "
                        "weights, never commit them)")
    p.add_argument("--longer", type=int, default=None, metavar="K",
                   help="also one run of K iterations per method and seed (optional)")
    args = p.parse_args(argv)
    if args.longer is not None and args.longer < 1:
        p.error(f"--longer must be an integer >= 1 (iterations); got {args.longer}")
    path = H.result_file(args.out, "bypass_vs_es", args.quick)
    if H.replot(args.replot, path, plot):
        return
    if args.quick:
        data, runs = QUICK_DATA, plan((0,), QUICK_ITERATIONS, None)
    else:
        data, runs = acdc_options(args.data_dir), plan(SEEDS, None, args.longer)
    log = H.raw_log(args.out, path.stem)
    work = (args.work / path.stem).resolve()
    load = H.Load()
    for i, run in enumerate(runs):
        if run.key in log.done:
            continue
        print(f"bypass_vs_es: run {i + 1}/{len(runs)} {run.key}", flush=True)
        record = train(run, data, work / run.key)
        log.add(record)
        print(f"  {record['iterations']} iterations, {sum(record['step_seconds']):.0f} s of "
              f"steps, best Dice {max(d for _, d in record['validations']):.3f}", flush=True)
    config = {"seeds": sorted({r.seed for r in runs}), "data": data if args.quick else
              [a if a != str((args.data_dir / "training").resolve()) else "<ACDC>/training"
               for a in data], "longer": args.longer, "threads_per_run": 1}  # fmt: skip
    done = [r for r in log.records if r["key"] in {run.key for run in runs}]
    main_keys = {run.key for run in runs[:2 * len(config["seeds"])]}  # not the longer runs
    write(path, done, main_keys, len(runs), config, __doc__, load)


if __name__ == "__main__":
    main()
