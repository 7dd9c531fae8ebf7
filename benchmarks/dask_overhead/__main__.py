"""What scheduling a study's runs on Dask costs per run (``benchmarks/_schedule.py``).

Writes ``benchmarks/dask_overhead/results/dask_overhead.json`` (a ``"table"``: the per-run
overhead of each setting, median and quartiles; the ``"projection"``: that overhead as a share of
a run of a given length and the makespan of a plan on N workers; the method and machine).

Method
------
A no-op run (a module-level function that returns its record, ``{"key": ..., "seed": 0}``) on a
``LocalCluster`` of 1 and of 2 worker processes with 1 thread each (``_schedule.connect``, what
the studies use), after 5 warm-up runs:

* round trip: one run at a time, ``client.submit`` to ``future.result()`` (submit -> start ->
  result), 60 repeats; the worker's clock at the run's start splits it into submit -> start and
  start -> result (one machine, one clock);
* per run of a plan: ``_schedule.run_plan`` of 100 no-op tasks with unique keys into a fresh
  ``RunLog`` in a temporary folder (the client appends each record and rewrites the JSONL
  atomically with an fsync, as the studies do), wall time over the number of runs, 5 repeats.
  The log rewrite grows with the records: at a study's tens of runs it is a small part;
* start-up: ``connect()`` until the client is ready, and closing it, 3 repeats (once per study
  session; the studies' workers then load their data once each).

Projection: a run of length T pays the plan's per-run overhead o once, a share o / (T + o); a plan
of n equal runs on N workers takes about start-up + ceil(n / N) (T + o). Beyond one machine the
round trip adds the network's latency (a LAN: well under a millisecond) and the scheduler's own
cost per task (about a millisecond of scheduler CPU, Dask's documented figure), both far below
the minutes of a training run; what does not scale is the one client writing the log, which
rewrites it per record (fine for thousands of runs, not millions).

Run ``python -m benchmarks.dask_overhead`` (about a minute) or ``--quick`` (fewer repeats:
``dask_overhead_quick.json``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _harness as h
from benchmarks import _schedule

RUN_LENGTHS_S = (1.0, 10.0, 60.0, 600.0, 3600.0)
NODES = (1, 2, 8, 32)


def noop(key: str) -> dict[str, Any]:
    """The no-op run: its record, with the worker's clock at its start."""
    return {"key": key, "seed": 0, "started": time.time()}


def round_trips(client: Any, repeats: int) -> dict[str, list[float]]:
    """Submit -> result of one run at a time, split at the run's start."""
    out: dict[str, list[float]] = {"round_trip_s": [], "submit_to_start_s": [],
                                   "start_to_result_s": []}  # fmt: skip
    for k in range(5 + repeats):
        t0 = time.time()
        rec = client.submit(noop, f"r{k}", pure=False).result()
        t1 = time.time()
        if k >= 5:
            out["round_trip_s"].append(t1 - t0)
            out["submit_to_start_s"].append(rec["started"] - t0)
            out["start_to_result_s"].append(t1 - rec["started"])
    return out


def plan_per_run(client: Any, runs: int, repeats: int) -> list[float]:
    """Seconds per run of ``run_plan`` over ``runs`` no-op tasks (log included)."""
    out = []
    for rep in range(repeats):
        with tempfile.TemporaryDirectory(prefix="dask_overhead_") as tmp:
            log = h.RunLog(Path(tmp) / "raw" / "plan.jsonl")
            tasks = [_schedule.Task(f"{rep}/{k}", noop, (f"{rep}/{k}",)) for k in range(runs)]
            t0 = time.perf_counter()
            _schedule.run_plan(tasks, log, client)
            out.append((time.perf_counter() - t0) / runs)
    return out


def startup(workers: int, repeats: int) -> list[float]:
    """Seconds from ``connect()`` to a first result, and closing the cluster."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with _schedule.connect(workers=workers) as client:
            client.submit(noop, "ready", pure=False).result()
        out.append(time.perf_counter() - t0)
    return out


def projection(per_run: float, start: float) -> dict[str, Any]:
    """The overhead's share of a run of length T, and a 38-run plan's makespan on N workers."""
    share = {f"{t:g}": round(per_run / (t + per_run), 6) for t in RUN_LENGTHS_S}
    makespan = {f"{n}": {f"{t:g}": round(start + -(-38 // n) * (t + per_run), 1)
                         for t in RUN_LENGTHS_S} for n in NODES}  # fmt: skip
    return {"overhead_share_by_run_length_s": share,
            "makespan_s_of_38_runs_by_workers_and_run_length_s": makespan}


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "fewer repeats (dask_overhead_quick.json)", replot=False)
    args = p.parse_args(argv)
    repeats, runs, plans, starts = (10, 20, 2, 1) if args.quick else (60, 100, 5, 3)
    load, rows, raw = h.Load(), [], {}
    for workers in (1, 2):
        with _schedule.connect(workers=workers) as client:
            trips = round_trips(client, repeats)
            per_run = plan_per_run(client, runs, plans)
        start = startup(workers, starts)
        raw[workers] = {**trips, "plan_per_run_s": per_run, "startup_s": start}
        stats = {k: h.summary(v, digits=6) for k, v in raw[workers].items()}
        raw[workers] = stats
        ms = lambda k: round(1e3 * stats[k]["median"], 2)  # noqa: E731
        rows.append([workers, ms("round_trip_s"), ms("submit_to_start_s"),
                     ms("start_to_result_s"), ms("plan_per_run_s"),
                     round(stats["startup_s"]["median"], 2)])  # fmt: skip
    two = raw[2]
    data = {
        "benchmark": "dask_overhead", "title": "Per-run overhead of a study's plan on Dask",
        "method": h.method_text(__doc__),
        "machine": h.machine_info(load_average_start_end=str(load)),
        "table": {"columns": ["LocalCluster workers", "round trip (ms)", "submit -> start (ms)",
                              "start -> result (ms)", "per run of a plan (ms)",
                              "start-up (s)"], "rows": rows},
        "projection": projection(two["plan_per_run_s"]["median"], two["startup_s"]["median"]),
        "raw": {str(w): v for w, v in raw.items()},
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    h.write_result(args.out / ("dask_overhead_quick.json" if args.quick else "dask_overhead.json"),
                   data)


if __name__ == "__main__":
    main()
