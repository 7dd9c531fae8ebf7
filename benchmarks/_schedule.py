"""How the multi-run studies run their plan: every unfinished run is a task on a Dask cluster.

A study lists its runs as :class:`Task` objects (a unique key, a function and its arguments, the
keys of the runs it needs first) and hands them to :func:`run_plan` with its
:class:`~benchmarks._harness.RunLog`:

* a run whose key is in the log is skipped (a restart resumes the plan);
* the others are submitted in plan order, each when a thread of the cluster is free for it (so
  a worker always takes the plan's next run; earlier tasks also have the higher priority), to a
  ``LocalCluster`` of :func:`connect` (``workers`` processes with 1 thread each) or to the
  scheduler at ``--scheduler ADDRESS``;
* a task that needs another (``after``) waits for it through its Dask future and receives the
  records it needs as its last arguments;
* a task that raises is retried ``retries`` times (Dask's ``retries=``); a task whose worker
  dies is rescheduled by the Dask scheduler on a fresh or another worker. Either way the task
  function runs again from the start, so a training run must resume from its own checkpoint
  (the LV studies' runs do: ``lvseg.train.Trainer(resume=True)`` on ``last.pt``);
* the client is the only writer: each finished record is appended to the log (rewritten
  atomically) as it arrives, and ``on_record`` rewrites the study's outputs.

A study calls :func:`run` (which starts the cluster only when some run is left) with the options
that :func:`add_options` adds to its parser.

The task functions run in the worker processes: they must be importable module-level functions
(a study's ``__main__`` module is referred to by its package name), and on a real cluster the
workers must run from a clone of the repository with the same data and run folders mounted at
the same paths.

Only the standard library and ``distributed`` are imported (``distributed`` when a plan runs).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks._harness import RunLog

#: Seconds :func:`connect` waits for the scheduler at ``--scheduler`` to answer.
CONNECT_TIMEOUT_S = 10
#: Times a task that raised is run again (Dask's ``retries=``).
RETRIES = 2

_CACHE: dict[str, Any] = {}


@dataclass(frozen=True)
class Task:
    """One run of a plan.

    Attributes:
        key: the run's unique key: the ``"key"`` of the record ``fn`` returns, and the run log's
            test for a finished run.
        fn: a module-level function ``fn(*args, *records_of_after) -> record``, the record a
            JSON-serialisable dict with ``"key": key``.
        args: its arguments (picklable).
        after: the keys of the runs it needs; their records are appended to ``args``.
    """

    key: str
    fn: Callable[..., dict[str, Any]]
    args: tuple[Any, ...] = ()
    after: tuple[str, ...] = ()


def add_options(p: argparse.ArgumentParser, workers: int = 2) -> None:
    """The options of every study that runs a plan: ``--workers`` and ``--scheduler``."""
    p.add_argument("--workers", type=int, default=workers,
                   help=f"LocalCluster worker processes, 1 thread each (default {workers})")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on the Dask scheduler at ADDRESS (e.g. tcp://host:8786) instead "
                        "of a LocalCluster; its workers must run from a clone of this "
                        "repository and see the same data and run folders")  # fmt: skip


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int = 2,
            processes: bool = True) -> Iterator[Any]:  # fmt: skip
    """A ``distributed.Client``: of a fresh ``LocalCluster`` (``workers`` processes with one
    thread each; ``processes=False``: threads of this process) or of the scheduler at
    ``scheduler``. The LocalCluster is closed on exit, a real cluster is left running.

    Raises:
        ValueError: ``workers`` is below 1.
        SystemExit: the scheduler at ``scheduler`` cannot be reached (the message names it).
    """
    from distributed import Client, LocalCluster

    if scheduler is None:
        if workers < 1:
            raise ValueError(f"--workers must be at least 1; got {workers}")
        # no dashboard; the scheduler's HTTP server (health, metrics) on a free local port
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                          dashboard_address=None,
                          scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as cluster, \
                Client(cluster) as client:  # fmt: skip
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, ValueError, TypeError) as err:
        raise SystemExit(
            f"--scheduler {scheduler!r}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
            f"({type(err).__name__}: {err}). Start one with `dask scheduler` and workers with "
            "`dask worker ADDRESS --nthreads 1` (from the repository root), or leave "
            "--scheduler out to run on a LocalCluster") from None  # fmt: skip
    with client:
        yield client


def importable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself, or for a function of a study run as ``python -m benchmarks.<study>``
    (module ``__main__``) the same function of ``benchmarks.<study>.__main__``, which the
    workers can import by name."""
    if fn.__module__ != "__main__":
        return fn
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        raise TypeError(f"{fn.__qualname__} is defined in a script run by path; run the study "
                        "as `python -m benchmarks.<study>` so that workers can import it")
    return getattr(importlib.import_module(spec.name), fn.__qualname__)


def worker_cache(key: str, make: Callable[[], Any]) -> Any:
    """``make()``, built once per worker process and ``key`` (a study's data, loaded once)."""
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def run_plan(tasks: Sequence[Task], log: RunLog, client: Any, retries: int = RETRIES,
             on_record: Callable[[dict[str, Any]], None] | None = None,
             earlier: Sequence[dict[str, Any]] = ()) -> list[str]:  # fmt: skip
    """Run the tasks whose key is not in ``log`` (nor in ``earlier``, records of finished runs
    kept in other logs) on ``client``; returns the keys run now.

    Records are added to ``log`` in the order they finish; ``on_record(record)`` is called after
    each. A task that still fails after its retries does not stop the others (nor those that do
    not need it); at the end a ``RuntimeError`` names every failed key.

    Raises:
        ValueError: two tasks share a key, or a task needs a key that is neither in the plan nor
            in the log.
        RuntimeError: some tasks failed (after the others finished and were logged).
    """
    from distributed import as_completed

    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"a plan's task keys must be unique; repeated: {dup}")
    done = {r["key"]: r for r in [*earlier, *log.records]}
    rank = {k: i for i, k in enumerate(keys)}
    todo = [t for t in tasks if t.key not in done]
    for task in todo:
        missing = [k for k in task.after
                   if k not in done and rank.get(k, len(keys)) > rank[task.key]]
        if missing:
            raise ValueError(f"task {task.key!r} needs {missing}, which are neither earlier in "
                             "the plan nor in the run log; list them before it")
    futures: dict[str, Any] = {}
    finished: set[str] = set()
    token = uuid.uuid4().hex[:8]  # Dask keys unique to this call, even on a shared scheduler
    completed = as_completed()
    queue = list(reversed(todo))
    by_key = {t.key: t for t in todo}

    def submit_ready() -> None:
        """Submit the next tasks in plan order while fewer runnable ones are in flight than the
        cluster has threads, so that a worker takes the plan's next run, not one the scheduler
        had queued on it earlier (a task waiting for another does not count)."""
        threads = max(1, sum(client.nthreads().values()))
        while queue:
            busy = [k for k in futures if k not in finished and
                    all(a in done or a in finished for a in by_key[k].after)]
            if len(busy) >= threads:
                return
            task = queue.pop()
            needs = [futures.get(k, done.get(k)) for k in task.after]
            futures[task.key] = client.submit(importable(task.fn), *task.args, *needs,
                                              key=f"{task.key}#{token}", retries=retries,
                                              priority=-rank[task.key], pure=False)
            completed.add(futures[task.key])

    failed: dict[str, BaseException] = {}
    submit_ready()
    for future in completed:
        key = future.key.rpartition("#")[0]  # the task's key, without the token
        finished.add(key)
        if future.status != "finished":
            failed[key] = future.exception()
            print(f"{key}: failed: {failed[key]!r}", file=sys.stderr, flush=True)
        else:
            record = future.result()
            if record.get("key") != key:
                failed[key] = ValueError(f"its record's key is {record.get('key')!r}")
            else:
                log.add(record)
                if on_record is not None:
                    on_record(record)
        submit_ready()
    if failed:
        lines = "; ".join(f"{k}: {e!r}" for k, e in failed.items())
        raise RuntimeError(f"{len(failed)} of {len(futures)} runs failed ({lines}); the "
                           "others are in the run log, and a restart retries the failed ones")
    return list(futures)


def run(tasks: Sequence[Task], log: RunLog, scheduler: str | None, workers: int,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        earlier: Sequence[dict[str, Any]] = ()) -> list[str]:  # fmt: skip
    """:func:`run_plan` on a client of :func:`connect` (``--scheduler``, ``--workers``), which
    is started only when some task is not finished yet; returns the keys run now."""
    done = log.done | {r["key"] for r in earlier}
    if all(t.key in done for t in tasks):
        return []
    with connect(scheduler, workers) as client:
        return run_plan(tasks, log, client, on_record=on_record, earlier=earlier)
