"""What a training iteration costs through the ``lvseg train`` command: EDPCNN against the U-Net.

Writes ``benchmarks/lv_cli_overhead/results/lv_cli_overhead.json`` (a ``"table"``, the
``"method"``, ``"machine"`` and every raw timing with the load average) and
``lv_cli_overhead.png`` (the ratio EDPCNN / U-Net of each clock, per round).

Method
------
The command a user types, in a fresh process per run: ``lvseg train --method M --data
sunnybrook --train-size 10 --iterations K --out DIR`` (its ``lvseg.cli.main``, started through
``_child.py``, which adds CPU clocks) on the bundled Sunnybrook sample,
every other option at its default (progress bar included, output discarded), with the thread
settings ``OMP_NUM_THREADS = MKL_NUM_THREADS = NUMBA_NUM_THREADS = threads`` (``--threads``, 1
by default) and ``OMP_WAIT_POLICY=PASSIVE``. Each method runs twice per round, with K = base
(10) and K = base + extra (60; ``--extra``, 50 by default): the cost of one iteration is the
difference of the two wall times divided by extra, and the same of the CPU time the process used
(user + system, from ``getrusage``; less sensitive to other programs than the wall time), so the
start-up (imports, data, the numba cache) cancels out, and the extra iterations hold what a
user's run holds per iteration: with the defaults the longer run validates and writes last.pt
at iterations 25, 50 and at its end, the shorter one at its end, two more of each per 50
iterations, one per 25 as in a run of any length. 50 extra iterations also average over a
longer stretch of the machine's load than the 20 of the first versions of this study. The four runs of a round are interleaved (U-Net and EDPCNN, short and long, in turn), so a
change of the machine's load hits all of them alike; ``--rounds`` rounds (3) after ``--warmup``
untimed rounds (1). The same difference is taken of clocks inside the process: the wall time of
``Trainer.fit`` (the ``seconds`` of the run's summary: steps, validations, checkpoints, hooks) and
of ``Trainer.step`` (the sum of the ``seconds`` of the ``step`` events in ``metrics.jsonl``:
batch, centre jitter, forward, loss, backward, Adam; what ``benchmarks/lv_overhead.py`` times
in-process), and the process CPU time of each, which ``_child.py`` measures around the same two
methods while running the unchanged ``lvseg.cli.main``. The CPU time of ``Trainer.fit`` is the
main figure: it holds everything a training iteration costs in the command, leaves out the
start-up (whose variance swamps the whole-command difference on a busy machine) and is much less
moved by other programs than the wall time. Reported: the median over rounds and the range, and the
ratio EDPCNN / U-Net of each round; the 1-minute load average at the start and the end of each
round is in the JSON, because the machine may be shared.

Run ``python -m benchmarks.lv_cli_overhead`` from the repository root (about 7 minutes on 2
idle CPU cores) or ``--quick`` (1 round, no warm-up, extra 10 iterations; about 1.5 minutes).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H
from benchmarks._lv_runs import child_env

HERE = Path(__file__).resolve().parent
REPO = H.REPO
METHODS = ("unet", "edpcnn")
CLOCKS = ("wall", "cpu", "fit", "fit_cpu", "step", "step_cpu")
#: Iterations the long run adds to the short one (``--extra``).
EXTRA = 50


def train_once(method: str, iterations: int, env: dict[str, str]) -> dict[str, float]:
    """One ``lvseg train`` in a fresh process: wall, CPU, fit and summed step seconds."""
    with tempfile.TemporaryDirectory(prefix="lv_cli_overhead_") as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "benchmarks.lv_cli_overhead._child", "train", "--method",
               method, "--data",
               "sunnybrook", "--train-size", "10", "--iterations", str(iterations),
               "--out", str(run_dir)]  # fmt: skip
        before, start = _children_cpu(), time.perf_counter()
        env = {**env, "LV_CLI_CLOCKS": str(Path(tmp) / "clocks.json")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
        wall, cpu = time.perf_counter() - start, _children_cpu() - before
        if proc.returncode:
            sys.stderr.write(proc.stderr[-3000:])
            raise SystemExit(f"lvseg train --method {method} failed (exit {proc.returncode})")
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        clocks = json.loads((Path(tmp) / "clocks.json").read_text())
    steps = sum(e["seconds"] for e in events if e["event"] == "step")
    return {"wall": wall, "cpu": cpu, "fit": float(summary["seconds"]), "step": steps, **clocks}


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(base: int, extra: int, rounds: int, warmup: int, threads: int) -> dict[str, Any]:
    """Interleaved rounds; per round and method the seconds per extra iteration of each clock."""
    env = child_env(threads)  # this checkout's packages, ``threads`` threads
    per_round: list[dict[str, Any]] = []
    for r in range(warmup + rounds):
        load = H.Load()
        runs = {(m, k): train_once(m, k, env) for k in (base, base + extra) for m in METHODS}
        if r < warmup:
            continue
        record: dict[str, Any] = {"load_average": str(load)}
        for m in METHODS:
            short, long_ = runs[(m, base)], runs[(m, base + extra)]
            record[m] = {c: (long_[c] - short[c]) / extra for c in CLOCKS}
        record["ratio"] = {c: record["edpcnn"][c] / record["unet"][c] for c in CLOCKS}
        print(f"round {r - warmup + 1}/{rounds} (load {load}): "
              + ", ".join(f"{m} {record[m]['wall']:.3f} s/it" for m in METHODS)
              + f", ratio {record['ratio']['wall']:.2f} (CPU time: command "
              f"{record['ratio']['cpu']:.2f}, Trainer.fit {record['ratio']['fit_cpu']:.2f})",
              file=sys.stderr, flush=True)
        per_round.append(record)
    return {"rounds": per_round}


def span(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of ``values``."""
    return f"{np.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def table(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    clocks = [("fit_cpu", "training loop (Trainer.fit), CPU time"),
              ("fit", "training loop (Trainer.fit), wall time"),
              ("step_cpu", "steps only (Trainer.step), CPU time"),
              ("step", "steps only (Trainer.step), wall time"),
              ("cpu", "whole command, CPU time"), ("wall", "whole command, wall time")]
    rows = []
    for clock, label in clocks:
        cells = [span([r[m][clock] for r in rounds], ".3f") for m in METHODS]
        rows.append([label, *cells, span([r["ratio"][clock] for r in rounds], ".2f")])
    loads = "; ".join(r["load_average"] for r in rounds)
    return {"columns": ["s per iteration, median (range)", "U-Net", "EDPCNN",
                        f"EDPCNN / U-Net (load {loads})"], "rows": rows}  # fmt: skip


def plot(data: dict[str, Any], path: Path) -> None:
    """The ratio EDPCNN / U-Net of each clock: one dot per round, the median as a bar."""
    plt = H.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    labels = {"wall": "command\nwall", "cpu": "command\nCPU", "fit": "fit\nwall",
              "fit_cpu": "fit\nCPU", "step": "step\nwall", "step_cpu": "step\nCPU"}
    for i, clock in enumerate(CLOCKS):
        ratios = [r["ratio"][clock] for r in data["rounds"]]
        ax.scatter([i] * len(ratios), ratios, color="tab:blue", s=14, zorder=3)
        ax.hlines(float(np.median(ratios)), i - 0.25, i + 0.25, color="black")
    ax.axhline(1.2, color="tab:red", linestyle="--", linewidth=1, label="target 1.2")
    ax.set_xticks(range(len(CLOCKS)), [labels[c] for c in CLOCKS])
    ax.set_ylabel("EDPCNN / U-Net, per iteration")
    ax.set_title(f"lvseg train, {data['config']['threads']} thread(s), load "
                 + ", ".join(r["load_average"] for r in data["rounds"]), fontsize=8)
    ax.legend(fontsize=8)
    H.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = H.parser(__doc__, "1 round, no warm-up, extra 10 iterations", replot=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--extra", type=int, default=None,
                   help=f"iterations the long run adds to the short one ({EXTRA}; --quick: 10)")
    args = p.parse_args(argv)
    if args.extra is not None and args.extra < 1:
        p.error(f"--extra must be an integer >= 1; got {args.extra}")
    path = H.result_file(args.out, "lv_cli_overhead", args.quick)
    if H.replot(args.replot, path, plot):
        return
    base, extra = 10, args.extra or (10 if args.quick else EXTRA)
    rounds, warmup = (1, 0) if args.quick else (args.rounds, args.warmup)
    load = H.Load()
    data = measure(base, extra, rounds, warmup, args.threads)
    data.update({
        "title": f"lvseg train: seconds per iteration, {args.threads} thread(s)",
        "table": table(data["rounds"]), "method": H.method_text(__doc__),
        "machine": H.machine_info(load_average=str(load), commit=H.git_commit()[:12]),
        "config": {"base": base, "extra": extra, "rounds": rounds, "warmup": warmup,
                   "threads": args.threads},
    })  # fmt: skip
    H.write_result(path, data)
    plot(data, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
