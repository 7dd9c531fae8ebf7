"""Throughput of the star-pattern DP: the numba solver against the torch reference.

Writes ``benchmarks/stardp_throughput/results/stardp_throughput.json`` (raw measurements, a summary ``"table"``,
``"method"``, ``"machine"``) and ``benchmarks/stardp_throughput/results/stardp_throughput.png`` (contours/s against
the batch size, N, M and delta).

Method
------
What is timed: one call of ``diffbypass_stardp.dp_solve(cost, delta)`` on a float32 NumPy cost of
shape ``(B, N, M)``, including its input checks, and of the torch reference
``dp_torch(cost, delta, HardMin())`` (the thesis' Algorithm 2 vectorised over the start index:
``O(N M^2 delta)`` work and ``(N - 1) B M^2`` bytes of back-pointers) on the same cost as a
tensor. Throughput is contours per second, ``B`` divided by the wall time of a call.

Workloads (fixed seeds; ``--seed`` + a per-configuration offset):

* ``disc`` (the main one): what ``StarDP`` sees in EDPCNN. Warped object-probability maps of
  discs, 1 inside and 0 outside, radius uniform in [0.15 M, 0.85 M] points, plus Gaussian noise
  of standard deviation 0.2 on every point; the cost is their ``radial_difference``.
* ``noise``: i.i.d. uniform [0, 1) costs, no structure.
* ``helix`` (adversarial for the solver's pruning): every line prefers the points on a
  diagonal, so every open chain spirals and the closure constraint is what decides; the solver
  then evaluates (nearly) every start exactly.

Warm-up and repeats: every configuration is called once untimed first (this includes numba's
compilation on the first call of a dtype; the first-call time of the cold solver is recorded
separately as ``compile_s``, and is small when numba's on-disk cache already holds the
kernels). Then ``--repeats`` (9) timed repeats; a repeat loops over calls until it has run for
at least ``--min-time`` (0.1 s) and reports the mean per call. The table gives the median and
the interquartile range (25th-75th percentile) over the repeats. The torch reference gets 3
repeats of a single call at the larger batches.

Threads: ``dp_solve`` splits batches of 64 or more contours into chunks that run on a thread pool
of ``NUMBA_NUM_THREADS`` threads (all cores); the torch reference runs with torch's default
intra-op threads, and also single-threaded. The machine may be shared with other jobs: the load
average at the start and end of the run is in ``"machine"``, and numbers taken on a busy machine
understate what the solver does on an idle one.

Peak memory: for each measured case a fresh Python process (the same interpreter) builds the
cost, makes one warm-up call on a single contour (compilation), then one measured call on the
whole batch; the table reports the increase of the process's peak resident set size during the
measured call over its resident set size before it (Linux: the peak mark is reset through
``/proc/self/clear_refs`` and read as ``VmHWM``), and for ``dp_solve`` also the peak traced by
``tracemalloc``
(NumPy allocations: the output and any input conversion; the kernel's scratch,
``2 N (M + 4 delta)`` floats per thread, is not traced).

Run ``python -m benchmarks.stardp_throughput`` (a few minutes) or ``--quick`` (3 repeats of at
least 0.02 s; written as ``stardp_throughput_quick.*``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import _harness as h
import numba
from diffbypass_stardp import HardMin, dp_solve, dp_torch, radial_difference

BASE = {"n_lines": 25, "m": 65, "delta": 1}
BATCHES = [1, 10, 100, 1000, 4096]
TORCH_BATCHES = [1, 10, 100, 1000]
SCALING = {"n_lines": [12, 25, 50, 100], "m": [33, 65, 129], "delta": [0, 1, 2, 5]}


# ---------------------------------------------------------------- workloads
def make_cost(workload: str, batch: int, n_lines: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if workload == "disc":
        radius = rng.uniform(0.15 * m, 0.85 * m, size=(batch, 1, 1))
        g = (np.arange(m) < radius).astype(np.float32)
        g = g + 0.2 * rng.standard_normal((batch, n_lines, m)).astype(np.float32)
        return np.ascontiguousarray(radial_difference(g), dtype=np.float32)
    if workload == "noise":
        return rng.random((batch, n_lines, m), dtype=np.float32)
    if workload == "helix":
        n, j = np.arange(n_lines)[:, None], np.arange(m)[None, :]
        prefer = -(((j - n) % m) % 3 == 0).astype(np.float32)
        return (prefer + 1e-3 * rng.random((batch, n_lines, m))).astype(np.float32)
    raise ValueError(f"unknown workload {workload!r}")


# ---------------------------------------------------------------- timing
def summary(batch: int, seconds: list[float]) -> dict[str, Any]:
    """Contours per second (median and IQR over the repeats) and ms per call."""
    rate = h.summary(batch / np.asarray(seconds))
    return {"contours_per_s": rate["median"], "iqr_low": rate["q25"], "iqr_high": rate["q75"],
            "ms_per_call": float(np.median(seconds) * 1e3), "repeats": len(seconds)}


# ---------------------------------------------------------------- memory (child process)
def rss_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in KiB, from ``/proc/self/status``;
    ``ru_maxrss`` where there is no ``/proc`` (it also counts the parent's peak before exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: write 5 to ``/proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure_memory(impl: str, batch: int, seed: int) -> dict[str, float]:
    """Run in a fresh process: peak RSS increase (and tracemalloc peak) of one call."""
    cost = make_cost("disc", batch, BASE["n_lines"], BASE["m"], seed)
    if impl == "numba":
        def call(n: int) -> None:
            dp_solve(cost[:n], BASE["delta"])
    else:
        tensor = torch.from_numpy(cost)

        def call(n: int) -> None:
            dp_torch(tensor[:n], BASE["delta"], HardMin())
    call(1)  # compile / load the kernels with a single contour
    reset_peak_rss()
    before = rss_kib("VmRSS")
    tracemalloc.start()
    call(batch)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = rss_kib("VmHWM")
    return {"peak_rss_increase_mib": (after - before) / 1024, "rss_peak_mib": after / 1024,
            "tracemalloc_peak_mib": traced / 2**20 if impl == "numba" else None,
            "input_mib": cost.nbytes / 2**20}


def memory_in_child(impl: str, batch: int, seed: int) -> dict[str, float]:
    return h.run_json_child(
        [sys.executable, "-m", "benchmarks.stardp_throughput", "--memory-child", impl, str(batch), "--seed", str(seed)])


# ---------------------------------------------------------------- run
def run(args: argparse.Namespace) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    seed = args.seed

    def add(bench: str, impl: str, workload: str, batch: int, n_lines: int, m: int, delta: int,
            seconds: list[float], **extra: Any) -> None:
        results.append({"benchmark": bench, "implementation": impl, "workload": workload,
                        "batch": batch, "n_lines": n_lines, "m": m, "delta": delta,
                        **summary(batch, seconds), "seconds": seconds, **extra})
        r = results[-1]
        print(f"{bench:8s} {impl:14s} {workload:6s} B={batch:5d} N={n_lines:3d} M={m:3d} "
              f"d={delta}: {r['contours_per_s']:10.0f} contours/s", flush=True)

    start = time.perf_counter()
    compile_s = {}
    for dtype in (np.float32, np.float64):  # cold first call (compile, or load numba's cache)
        t0 = time.perf_counter()
        dp_solve(np.zeros((1, 25, 65), dtype=dtype), 1)
        compile_s[np.dtype(dtype).name] = time.perf_counter() - t0

    n_lines, m, delta = BASE["n_lines"], BASE["m"], BASE["delta"]
    for batch in BATCHES:
        cost = make_cost("disc", batch, n_lines, m, seed + batch)
        add("batch", "numba dp_solve", "disc", batch, n_lines, m, delta,
            h.time_calls(lambda: dp_solve(cost, delta), args.repeats, args.min_time))
    for workload in ("noise", "helix"):
        cost = make_cost(workload, 1000, n_lines, m, seed + 1)
        add("workload", "numba dp_solve", workload, 1000, n_lines, m, delta,
            h.time_calls(lambda: dp_solve(cost, delta), args.repeats, args.min_time))
    for key, values in SCALING.items():
        for value in values:
            cfg = {**BASE, key: value}
            cost = make_cost("disc", 1000, cfg["n_lines"], cfg["m"], seed + 7 * value)
            add(f"scale {key}", "numba dp_solve", "disc", 1000, cfg["n_lines"], cfg["m"],
                cfg["delta"],
                h.time_calls(lambda: dp_solve(cost, cfg["delta"]), args.repeats, args.min_time))

    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for batch in TORCH_BATCHES:
            cost = torch.from_numpy(make_cost("disc", batch, n_lines, m, seed + batch))
            reps, min_time = (3, 0.0) if batch >= 100 else (args.repeats, args.min_time)
            add("batch", f"torch reference ({threads} thr)", "disc", batch, n_lines, m, delta,
                h.time_calls(lambda: dp_torch(cost, delta, HardMin()), reps, min_time))
    torch.set_num_threads(default_threads)

    memory = []
    for impl, batch in [("numba", 1000), ("numba", 4096), ("torch", 100), ("torch", 1000)]:
        mem = memory_in_child(impl, batch, seed)
        memory.append({"implementation": impl, "batch": batch, **mem})
        print(f"memory {impl} B={batch}: +{mem['peak_rss_increase_mib']:.1f} MiB peak RSS",
              flush=True)
    return {"results": results, "memory": memory, "compile_s": compile_s,
            "runtime_s": time.perf_counter() - start}


def table(data: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for r in data["results"]:
        rows.append([r["benchmark"], r["implementation"], r["workload"], r["batch"], r["n_lines"],
                     r["m"], r["delta"], round(r["contours_per_s"]), round(r["iqr_low"]),
                     round(r["iqr_high"]), r["ms_per_call"]])
    for mem in data["memory"]:
        impl = "numba dp_solve" if mem["implementation"] == "numba" else "torch reference"
        traced = mem["tracemalloc_peak_mib"]
        what = f"peak memory: +{mem['peak_rss_increase_mib']:.1f} MiB RSS" + (
            f", {traced:.2f} MiB traced" if traced is not None else "")
        rows.append([what, impl, "disc",
                     mem["batch"], BASE["n_lines"], BASE["m"], BASE["delta"], None, None, None,
                     None])
    return {"columns": ["benchmark", "implementation", "workload", "B", "N", "M", "delta",
                        "contours/s (median)", "IQR low", "IQR high", "ms / call"],
            "rows": rows}


def plot(data: dict[str, Any], path: Path) -> None:
    fig, axes = h.pyplot().subplots(1, 4, figsize=(16, 3.8))
    res = data["results"]

    def draw(ax: Any, rows: list[dict[str, Any]], x: str, label: str, **kw: Any) -> None:
        xs = [r[x] for r in rows]
        ys = np.array([r["contours_per_s"] for r in rows])
        err = [ys - [r["iqr_low"] for r in rows], [r["iqr_high"] for r in rows] - ys]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label, **kw)

    ax = axes[0]
    impls = sorted({r["implementation"] for r in res if r["benchmark"] == "batch"})
    for impl in impls:
        draw(ax, [r for r in res if r["benchmark"] == "batch" and r["implementation"] == impl],
             "batch", impl)
    ax.set(xscale="log", yscale="log", xlabel="batch B", ylabel="contours / s",
           title="N=25, M=65, delta=1, float32")
    ax.axhline(20000, color="grey", ls=":", lw=1, label="target 20k/s")
    ax.legend(fontsize=7)
    for ax, key, name in zip(axes[1:], ["n_lines", "m", "delta"], ["N", "M", "delta"]):
        draw(ax, [r for r in res if r["benchmark"] == f"scale {key}"], key, "numba dp_solve")
        ax.set(yscale="log", xlabel=name, title=f"scaling in {name} (B=1000, disc)")
        ax.axhline(20000, color="grey", ls=":", lw=1)
    fig.suptitle(f"stardp DP throughput ({data['machine']['cpu_count']} CPU cores; load "
                 f"{data['machine']['load_average_start_end']})", fontsize=9)
    h.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    parser = h.parser(__doc__, "3 repeats of at least 0.02 s (stardp_throughput_quick.*)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-child", nargs=2, metavar=("IMPL", "BATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        impl, batch = args.memory_child
        print(json.dumps(measure_memory(impl, int(batch), args.seed)))
        return
    if args.quick:
        args.repeats, args.min_time = 3, 0.02
    path = h.result_file(args.out, "stardp_throughput", args.quick)
    if h.replot(args.replot, path, plot):
        return
    load = h.Load()
    data = run(args)
    data["machine"] = h.machine_info(numba=numba.__version__,
                                     numba_threads=numba.config.NUMBA_NUM_THREADS,
                                     load_average_start_end=str(load))  # fmt: skip
    base = next(r for r in data["results"] if r["benchmark"] == "batch" and r["batch"] == 1000
                and r["implementation"] == "numba dp_solve")
    data.update({
        "benchmark": "stardp_throughput",
        "title": "Star-pattern DP throughput (contours per second)",
        "method": h.method_text(__doc__),
        "config": {**BASE, "dtype": "float32", "batches": BATCHES, "scaling": SCALING,
                   "repeats": args.repeats, "min_time_s": args.min_time, "seed": args.seed},
        "headline": {"contours_per_s_batch_1000": base["contours_per_s"],
                     "iqr": [base["iqr_low"], base["iqr_high"]]},
        "table": table(data),
        "figures": [path.with_suffix(".png").name],
    })
    h.write_result(path, data, echo=False)
    plot(data, path.with_suffix(".png"))
    print(f"batch 1000: {base['contours_per_s']:.0f} contours/s; wrote {args.out} "
          f"in {data['runtime_s']:.0f} s")


if __name__ == "__main__":
    main()
