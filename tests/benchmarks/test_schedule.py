"""benchmarks/_schedule.py: a study's plan on Dask (skip finished runs, dependencies, retries,
a lost worker, one writer, a bad scheduler address), with tiny fake runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import _harness as h
from benchmarks import _schedule as s


def square(key: str, x: int) -> dict[str, Any]:
    return {"key": key, "x": x, "y": x * x, "pid": os.getpid()}


def plus(key: str, record: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "y": record["y"] + 1}


def flaky(key: str, marker: str) -> dict[str, Any]:
    """Raises the first time (no marker file yet), succeeds the second."""
    path = Path(marker)
    if not path.exists():
        path.write_text("1")
        raise RuntimeError("transient failure")
    return {"key": key, "ok": True}


def dies_once(key: str, folder: str) -> dict[str, Any]:
    """A run with a checkpoint: step 1 is saved, then the worker process is killed the first
    time; the retried run resumes from the checkpoint and finishes."""
    ckpt, marker = Path(folder) / "last.txt", Path(folder) / "killed"
    steps = int(ckpt.read_text()) if ckpt.exists() else 0
    resumed_from = steps
    while steps < 3:
        steps += 1
        h.atomic_write(ckpt, str(steps))
        if steps == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run
    return {"key": key, "steps": steps, "resumed_from": resumed_from, "pid": os.getpid()}


def always_fails(key: str) -> dict[str, Any]:
    raise ValueError("broken run")


@pytest.fixture(scope="module")
def client() -> Any:
    with s.connect(workers=1, processes=False) as c:
        yield c


def test_runs_the_plan_skips_finished_runs_on_restart(tmp_path: Path, client: Any) -> None:
    log = h.RunLog(tmp_path / "raw" / "plan.jsonl")
    tasks = [s.Task(f"x={x}", square, (f"x={x}", x)) for x in range(4)]
    seen: list[str] = []
    assert sorted(s.run_plan(tasks[:2], log, client, on_record=lambda r: seen.append(r["key"]))) \
        == ["x=0", "x=1"]
    assert sorted(seen) == ["x=0", "x=1"]
    before = (tmp_path / "raw" / "plan.jsonl").read_text().splitlines()
    restarted = h.RunLog(tmp_path / "raw" / "plan.jsonl")  # a restart reads the log
    assert sorted(s.run_plan(tasks, restarted, client)) == ["x=2", "x=3"]
    lines = (tmp_path / "raw" / "plan.jsonl").read_text().splitlines()
    assert lines[:2] == before  # finished records are kept as they were, never rerun
    records = [json.loads(x) for x in lines]  # the record format: one JSON object a line
    assert sorted(r["key"] for r in records) == ["x=0", "x=1", "x=2", "x=3"]
    assert {r["key"]: r["y"] for r in records} == {"x=0": 0, "x=1": 1, "x=2": 4, "x=3": 9}
    assert not list(tmp_path.rglob("*.claim")) and not list(tmp_path.rglob("*.lock"))


def test_a_dependent_run_gets_the_record_it_needs(tmp_path: Path, client: Any) -> None:
    log = h.RunLog(tmp_path / "log.jsonl")
    tasks = [s.Task("a", square, ("a", 3)), s.Task("b", plus, ("b",), after=("a",))]
    s.run_plan(tasks, log, client)
    assert {r["key"]: r["y"] for r in log.records} == {"a": 9, "b": 10}
    log2 = h.RunLog(tmp_path / "log2.jsonl")  # the needed run already in the log: its record
    log2.add({"key": "a", "y": 100})
    s.run_plan(tasks, log2, client)
    assert log2.records[-1] == {"key": "b", "y": 101}


def test_a_failing_run_is_retried(tmp_path: Path, client: Any) -> None:
    log = h.RunLog(tmp_path / "log.jsonl")
    s.run_plan([s.Task("f", flaky, ("f", str(tmp_path / "marker")))], log, client)
    assert log.records == [{"key": "f", "ok": True}]


def test_failed_runs_are_named_and_the_others_logged(tmp_path: Path, client: Any) -> None:
    log = h.RunLog(tmp_path / "log.jsonl")
    tasks = [s.Task("bad", always_fails, ("bad",)), s.Task("ok", square, ("ok", 2)),
             s.Task("needs-bad", plus, ("needs-bad",), after=("bad",))]
    with pytest.raises(RuntimeError, match=r"2 of 3 runs failed \(.*bad: ValueError\('broken run'\)"):
        s.run_plan(tasks, log, client, retries=0)
    assert [r["key"] for r in log.records] == ["ok"]


def test_plan_errors_are_clear(tmp_path: Path, client: Any) -> None:
    log = h.RunLog(tmp_path / "log.jsonl")
    with pytest.raises(ValueError, match=r"keys must be unique; repeated: \['a'\]"):
        s.run_plan([s.Task("a", square, ("a", 1)), s.Task("a", square, ("a", 2))], log, client)
    with pytest.raises(ValueError, match=r"task 'b' needs \['a'\], which are neither earlier"):
        s.run_plan([s.Task("b", plus, ("b",), after=("a",))], log, client)
    with pytest.raises(ValueError, match="--workers must be at least 1; got 0"):
        with s.connect(workers=0):
            pass


def test_a_bad_scheduler_address_is_a_clear_message() -> None:
    with pytest.raises(SystemExit, match=r"--scheduler 'tcp://127.0.0.1:9': no Dask scheduler "
                                         r"answered within .* leave\s+--scheduler out"):
        with s.connect("tcp://127.0.0.1:9"):
            pass
    with pytest.raises(SystemExit, match="--scheduler 'nonsense://x': no Dask scheduler"):
        with s.connect("nonsense://x"):
            pass


def test_a_run_whose_worker_dies_is_retried_and_resumes(tmp_path: Path) -> None:
    """One worker process; the run kills it after its first checkpoint. The nanny starts a new
    worker, the scheduler reruns the task there, and it resumes from the checkpoint."""
    log = h.RunLog(tmp_path / "log.jsonl")
    with s.connect(workers=1, processes=True) as c:
        s.run_plan([s.Task("run", dies_once, ("run", str(tmp_path)))], log, c)
    (rec,) = log.records
    assert (tmp_path / "killed").exists()
    assert rec["steps"] == 3 and rec["resumed_from"] == 1
    assert rec["pid"] != int((tmp_path / "killed").read_text())  # a fresh worker process


def test_run_starts_no_cluster_when_every_run_is_finished(tmp_path: Path, monkeypatch) -> None:
    log = h.RunLog(tmp_path / "log.jsonl")
    log.add({"key": "a", "y": 1})

    def no_cluster(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cluster was started for a finished plan")

    monkeypatch.setattr(s, "connect", no_cluster)
    assert s.run([s.Task("a", square, ("a", 1))], log, None, 2) == []
    assert s.run([s.Task("b", square, ("b", 1))], log, None, 2, earlier=[{"key": "b"}]) == []


def test_a_study_run_as_main_submits_its_functions_by_package_name(monkeypatch) -> None:
    import importlib.util
    import sys
    import types

    from benchmarks.dask_overhead.__main__ import noop

    fake = types.ModuleType("__main__")  # python -m benchmarks.dask_overhead
    fake.__spec__ = importlib.util.find_spec("benchmarks.dask_overhead.__main__")
    monkeypatch.setitem(sys.modules, "__main__", fake)

    def run() -> None: ...

    run.__module__, run.__qualname__ = "__main__", "noop"
    assert s.importable(run) is noop and s.importable(square) is square
    fake.__spec__ = None  # python benchmarks/x/__main__.py: workers could not import it
    with pytest.raises(TypeError, match=r"noop is defined in a script run by path; run the study "
                                        r"as `python -m benchmarks.<study>`"):
        s.importable(run)


def started(key: str, folder: str, seconds: float) -> dict[str, Any]:
    """Appends ``key`` to the folder's start order, then takes ``seconds``."""
    with open(Path(folder) / "order.txt", "a") as f:
        f.write(key + "\n")
    time.sleep(seconds)
    return {"key": key}


def test_workers_take_the_runs_in_plan_order(tmp_path: Path) -> None:
    """Two worker processes start the runs in plan order, whatever the scheduler would have
    queued on each worker: while one worker holds a long first run, the other takes the plan's
    next runs one by one (a run is handed out only when a thread is free for it)."""
    keys = [f"r{i:02d}" for i in range(12)]
    log = h.RunLog(tmp_path / "log.jsonl")
    tasks = [s.Task(k, started, (k, str(tmp_path), 3.0 if k == "r00" else 0.1)) for k in keys]
    with s.connect(workers=2) as c:
        s.run_plan(tasks, log, c)
    order = (tmp_path / "order.txt").read_text().split()
    assert sorted(order) == keys and len(log.records) == 12
    assert sorted(order[:2]) == keys[:2] and order[2:] == keys[2:], order
