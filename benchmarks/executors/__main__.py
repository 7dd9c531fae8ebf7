"""Distributed evaluation: an expensive black box on threads, processes and a Dask cluster.

Writes ``benchmarks/executors/results/executors.json`` (a ``"table"``, the ``"method"``, ``"machine"``, the
fitted scaling law and every raw timing) and ``executors.png`` (speed-up against workers,
per-task overhead, throughput against ``max_batch``).

Method
------
Black boxes, both mapping a batch (B, d) = (8, 16) to (B, d):

* ``program``: a real external program, ``examples/external_program/relax.c`` (a fixed-point
  solver, 20000 iterations per row; compiled at run time with the system's C compiler, else its
  Python twin ``relax.py``), started once per chunk through ``subprocess`` with the chunk on
  stdin. CPU-bound: its speed-up is capped by the free cores.
* ``sleep``: a stand-in for an I/O-bound service (a remote solver, a licence server): it sleeps
  1 ms per call plus 4 ms per row and uses no CPU, so its timings do not depend on the load.

Estimators: ES (S = 8 samples) and Surrogate (S = 8, a 16-32-16 MLP, 2 fit steps). One step is
a forward and backward pass through Bypass: B + S B = 72 evaluations of fn, in chunks of
max_batch = 8 (9 tasks per step). Executors: none (serial, the reference), a thread pool, a
process pool (spawn) and a Dask LocalCluster on 127.0.0.1, with worker processes (one thread
each) or with threads in one process, each with 1, 2 and 4 workers. Each executor is started
and warmed up (every worker has imported torch and run a task) before it is timed. Then every (box, estimator) gets 1 untimed round and
--repeats (7) timed rounds; a round is one step on the executor and the same step evaluated
serially (same chunks), timed in turn, so that a change in the machine's load hits both alike.
Reported: evaluations per second from the median step time, and the speed-up: the median serial
step over the median executor step of the same rounds.

Per-task overhead: the wall time per task of 64 no-op tasks (a (1, 16) input, an immediate
return) through each executor, median of 5 repeats. Chunk size: ES steps of the program box at
max_batch in 1, 2, 4, 8, 16, 32, 64 with no executor, 4 threads (the most workers) and Dask
with 2 worker processes, 1 untimed and --sweep-repeats (3) timed rounds each.

Scaling law: a step is the forward batch (one task of B evaluations) followed by the S B samples
in t = ceil(S B / m) tasks of m = max_batch. With w workers and k usable cores (k = infinity
for the sleep box, which needs none), each batch of t tasks takes

    T_batch = ceil(t / w) (p + m c) max(1, min(w, t) / k) + t o,

where c is the cost of one evaluation and p of one call (a program start), both fitted by least
squares on the serial chunk-size sweep (sleep box: its set 4 ms and 1 ms), and o is the
executor's measured per-task overhead. The table sets the speed-up this predicts beside the
measured one.

Contention: the machine has 2 cores shared with other jobs. The load average at the start and
the end is in "machine"; the CPU-bound program's numbers understate an idle machine, while the
sleep box's do not depend on the load. torch runs single-threaded in the main process.

Run ``python -m benchmarks.executors`` (about 9 minutes on the busy machine) or ``--quick`` (1 and 2 workers,
3 repeats; about a minute; written as ``executors_quick.*``).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks import _harness as h
from benchmarks.executors._report import KINDS, plot, table
from diffbypass import ES, Bypass, Surrogate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_program"
sys.path.insert(0, str(EXAMPLE))
os.environ["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
from program import ExternalProgram, build  # noqa: E402  examples/external_program/program.py

B, D, S, MAX_BATCH, ITERATIONS = 8, 16, 8, 8, 20000
SWEEP = (1, 2, 4, 8, 16, 32, 64)


class Sleep:
    """The I/O-bound stand-in: sleeps ``per_call + per_row * B`` seconds, returns ``sign(x)``."""

    def __init__(self, per_call: float = 1e-3, per_row: float = 4e-3) -> None:
        self.per_call, self.per_row = per_call, per_row

    def __call__(self, x: Any) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float32)
        time.sleep(self.per_call + self.per_row * len(rows))
        return np.sign(rows)


def noop(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _warm(_: int) -> int:
    import torch  # noqa: F401  (the chunks arrive as tensors)

    time.sleep(0.2)
    return os.getpid()


def start(kind: str, workers: int, stack: ExitStack) -> Executor | None:
    """A started, warmed-up executor (``None``: serial)."""
    if kind == "none":
        return None
    if kind == "threads":
        ex: Any = stack.enter_context(ThreadPoolExecutor(workers))
    elif kind == "processes":
        ctx = multiprocessing.get_context("spawn")  # forking a torch process can hang
        ex = stack.enter_context(ProcessPoolExecutor(workers, mp_context=ctx))
    else:
        import distributed

        cluster = stack.enter_context(distributed.LocalCluster(
            n_workers=workers if kind == "dask processes" else 1,
            threads_per_worker=1 if kind == "dask processes" else workers,
            processes=kind == "dask processes", host="127.0.0.1", protocol="tcp",
            dashboard_address=":0", silence_logs=logging.ERROR))  # fmt: skip
        client = stack.enter_context(distributed.Client(cluster))
        ex = client.get_executor()
    list(ex.map(_warm, range(2 * workers)))
    return ex


def estimator(name: str, seed: int) -> ES | Surrogate:
    gen = torch.Generator().manual_seed(seed)
    if name == "ES":
        return ES(sigma=0.3, samples=S, generator=gen)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(D, 32), nn.Tanh(), nn.Linear(32, D))
    return Surrogate(model, sigma=0.3, samples=S, fit_steps=2, generator=gen)


def time_steps(fn: Any, est: str, ex: Executor | None, max_batch: int, repeats: int,
               seed: int) -> dict[str, Any]:  # fmt: skip
    """Forward + backward steps through Bypass on ``ex``, interleaved with the same steps
    evaluated serially (the reference of the speed-up); evaluations and tasks per step."""
    gen = torch.Generator().manual_seed(seed)
    x, v = torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen)
    layers = {"executor": Bypass(fn, estimator(est, seed), executor=ex, max_batch=max_batch)}
    if ex is not None:
        layers["serial"] = Bypass(fn, estimator(est, seed), max_batch=max_batch)

    def step(layer: Bypass) -> Any:
        return lambda: layer(x.clone().requires_grad_(True)).backward(v)

    seconds = h.time_interleaved({k: step(layer) for k, layer in layers.items()}, repeats)
    step_s = h.summary(seconds["executor"], digits=5)
    serial_s = h.summary(seconds.get("serial", seconds["executor"]), digits=5)
    return {"step_s": step_s, "serial_step_s": serial_s, "evals_per_step": B + S * B,
            "tasks_per_step": layers["executor"].blackbox.calls / (repeats + 1),
            "evals_per_s": (B + S * B) / step_s["median"],
            "speedup": serial_s["median"] / step_s["median"]}  # fmt: skip


def task_overhead(ex: Executor | None, tasks: int = 64) -> dict[str, Any]:
    """Wall seconds per no-op task through ``ex``."""
    layer = Bypass(noop, ES(sigma=0.1, samples=tasks), executor=ex, max_batch=1)
    xs = torch.zeros(tasks, 1, D)
    seconds = h.time_calls(lambda: layer.blackbox.many(xs, what="overhead"), 5)
    return h.summary([s / tasks for s in seconds], digits=7)


def fit_law(sweep: list[dict[str, Any]]) -> dict[str, float]:
    """c (s per evaluation) and p (s per call) from T = n c + t p on the serial sweep."""
    rows = [r for r in sweep if r["executor"] == "serial"]
    a = np.array([[r["evals_per_step"], r["tasks_per_step"]] for r in rows])
    t = np.array([r["step_s"]["median"] for r in rows])
    (c, p), *_ = np.linalg.lstsq(a, t, rcond=None)
    return {"c_s_per_eval": float(c), "p_s_per_call": float(p)}


def predict(law: dict[str, float], o: float, max_batch: int, w: int, k: float) -> float:
    """Seconds per step: the forward batch (one task of B), then the S B samples in t tasks of
    m; each batch takes ceil(t / w) rounds of a task's time, stretched by min(w, t) / k when
    more tasks run than there are cores, plus t o for dispatching."""
    total = 0.0
    for n, t in ((B, 1), (S * B, math.ceil(S * B / max_batch))):
        task = law["p_s_per_call"] + n / t * law["c_s_per_eval"]
        total += math.ceil(t / w) * task * max(1.0, min(w, t) / k) + t * o
    return total


def analyse(data: dict[str, Any]) -> None:
    """Fit the law, predict every measurement, find the best max_batch, make the table."""
    law = fit_law(data["max_batch_sweep"])
    sleep_law = {"c_s_per_eval": Sleep().per_row, "p_s_per_call": Sleep().per_call}
    cores = data["machine"]["cpu_count"]
    overhead = data["task_overhead_s"]
    for r in data["results"] + data["max_batch_sweep"]:
        lw, k = (sleep_law, math.inf) if r.get("box") == "sleep" else (law, cores)
        w = 1 if r["executor"] == "serial" else int(r["executor"].rsplit("x", 1)[1])
        r["predicted_step_s"] = predict(lw, overhead[r["executor"]]["median"], r["max_batch"], w, k)
        r["predicted_speedup"] = predict(lw, 0.0, r["max_batch"], 1, k) / r["predicted_step_s"]
    best = {}
    for name in dict.fromkeys(r["executor"] for r in data["max_batch_sweep"]):
        rows = [r for r in data["max_batch_sweep"] if r["executor"] == name]
        best[name] = max(rows, key=lambda r: r["evals_per_s"])["max_batch"]
    data.update(law={"program": law, "sleep": sleep_law, "cores": cores}, best_max_batch=best)
    data["table"] = table(data)


def run(args: Any) -> dict[str, Any]:
    command = build()
    boxes = {"program": ExternalProgram(command, ITERATIONS), "sleep": Sleep()}
    configs = [("none", 1)] + [(k, w) for k in KINDS for w in args.workers]
    results, overhead, sweep = [], {}, []
    for kind, w in configs:
        name = "serial" if kind == "none" else f"{kind} x{w}"
        t0 = time.perf_counter()
        with ExitStack() as stack:
            ex = start(kind, w, stack)
            startup = time.perf_counter() - t0
            overhead[name] = h.summary([0.0]) if ex is None else task_overhead(ex)
            for box, fn in boxes.items():
                for est in ("ES", "Surrogate"):
                    r = time_steps(fn, est, ex, MAX_BATCH, args.repeats, args.seed)
                    results.append({"box": box, "estimator": est, "executor": name, "kind": kind,
                                    "workers": w, "max_batch": MAX_BATCH, **r})  # fmt: skip
            if (kind, w) in (("none", 1), ("threads", max(args.workers)), ("dask processes", 2)):
                for m in args.sweep:
                    r = time_steps(boxes["program"], "ES", ex, m, args.sweep_repeats, args.seed)
                    sweep.append({"box": "program", "executor": name, "max_batch": m, **r})
        print(f"{name:18s} started in {startup:5.1f} s, done in "
              f"{time.perf_counter() - t0:5.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    return {"results": results, "task_overhead_s": overhead, "max_batch_sweep": sweep,
            "program": command[-1]}


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "1 and 2 workers, 3 repeats, 3 chunk sizes (executors_quick.*)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--repeats", type=int, default=7, help="timed steps per configuration")
    p.add_argument("--sweep-repeats", type=int, default=3, help="timed steps per max_batch")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.sweep = SWEEP
    if args.quick:
        args.workers, args.repeats, args.sweep_repeats, args.sweep = [1, 2], 3, 2, (1, 8, 64)
    stem = "executors_quick" if args.quick else "executors"
    if args.replot:  # the analysis, table and plot again, from the raw measurements
        data = h.read_result(args.out / f"{stem}.json")
        analyse(data)
        h.write_result(args.out / f"{stem}.json", data)
        plot(data, args.out / f"{stem}.png")
        return
    torch.set_num_threads(1)
    load, t0 = h.Load(), time.perf_counter()
    data = run(args)
    data = {
        "benchmark": "executors",
        "title": "Black-box evaluations per second: serial, threads, processes and Dask",
        "method": h.method_text(__doc__),
        "machine": h.machine_info(load_average_start_end=str(load)),
        "config": {"batch": B, "d": D, "samples": S, "max_batch": MAX_BATCH,
                   "iterations": ITERATIONS, "workers": args.workers, "repeats": args.repeats,
                   "sweep_repeats": args.sweep_repeats, "sweep": list(args.sweep), "seed": args.seed},  # fmt: skip
        **data, "runtime_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    analyse(data)
    h.write_result(args.out / f"{stem}.json", data)
    plot(data, args.out / f"{stem}.png")


if __name__ == "__main__":
    main()
