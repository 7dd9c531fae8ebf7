"""Timeouts and retries for expensive black boxes (issue #8).

A hung evaluation becomes a ``BlackBoxError`` naming it after ``timeout``; a transient failure —
fn raising once, a process-pool worker killed mid-batch, a Dask worker killed mid-batch — is
retried, and the ES gradient is *identical* to the fault-free run for the same seed.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch

from diffbypass import ES, BlackBoxError, Bypass, KillablePool, StraightThrough

from . import _fns
from .registry import gen

X = torch.randn(4, 3, generator=gen(0), dtype=torch.float64)
V = torch.randn(4, 3, generator=gen(1), dtype=torch.float64)


def es_gradient(fn=_fns.wiggle, **bypass_kw):
    layer = Bypass(fn, ES(sigma=0.3, samples=6, generator=gen(2)), **bypass_kw)
    x = X.clone().requires_grad_(True)
    layer(x).backward(V)
    return x.grad, layer.blackbox


@pytest.fixture(scope="module")
def reference():
    return es_gradient()[0]


class Flaky:
    """``wiggle``; the ``fail_at``-th call (1-based) raises, or hangs until ``release`` is set."""

    def __init__(self, fail_at: int, hang: bool = False) -> None:
        self.fail_at, self.hang, self.calls = fail_at, hang, 0
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, x):
        with self.lock:
            self.calls += 1
            mine = self.calls
        if mine == self.fail_at:
            if self.hang:
                self.release.wait(30)
            else:
                raise ConnectionError("transient")
        return _fns.wiggle(x)


# ---------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"timeout": 1.0}, ValueError, r"timeout needs an executor \(a call in the calling thread"),
        ({"timeout": 0, "executor": "pool"}, ValueError, r"timeout must be a positive number; got 0"),
        ({"retries": -1}, ValueError, r"retries must be an integer >= 0; got -1"),
        ({"retries": True}, ValueError, r"retries must be an integer >= 0; got True"),
    ],
    ids=["timeout-without-executor", "timeout-zero", "retries-negative", "retries-bool"],
)
def test_timeout_and_retries_are_validated(kw, exc, match):
    with ThreadPoolExecutor(1) as pool:
        if kw.get("executor") == "pool":
            kw = {**kw, "executor": pool}
        with pytest.raises(exc, match=match):
            Bypass(_fns.wiggle, StraightThrough(), **kw)


# ---------------------------------------------------------------------------------- thread pool
def test_a_hung_evaluation_becomes_an_error_naming_it():
    fn = Flaky(fail_at=3, hang=True)  # forward, chunk 1 fine; chunk 2 hangs (one worker: in order)
    try:
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(
                BlackBoxError,
                match=r"^fn timed out in ES samples, chunk 2 of 3 \(flat samples 9\.\.16 of 24\) "
                r"after 0\.2 s$",
            ):
                es_gradient(fn, executor=pool, max_batch=8, timeout=0.2)
            fn.release.set()
    finally:
        fn.release.set()


def test_a_hung_evaluation_is_retried_with_the_same_result(reference):
    fn = Flaky(fail_at=3, hang=True)
    try:
        with ThreadPoolExecutor(2) as pool:
            grad, blackbox = es_gradient(fn, executor=pool, max_batch=8, timeout=0.2, retries=1)
            fn.release.set()
    finally:
        fn.release.set()
    assert torch.equal(grad, reference) and blackbox.retried == 1


@pytest.mark.parametrize("pool", [False, True], ids=["in-thread", "thread-pool"])
def test_a_transient_failure_is_retried_with_the_same_result(reference, pool):
    with ThreadPoolExecutor(2) as executor:
        grad, blackbox = es_gradient(
            Flaky(fail_at=2), executor=executor if pool else None, max_batch=8, retries=2
        )
    assert torch.equal(grad, reference) and blackbox.retried == 1


def test_retries_run_out_with_the_last_error_chained():
    def down(x):
        raise ConnectionError("down")

    layer = Bypass(down, StraightThrough(), retries=2)
    with pytest.raises(BlackBoxError, match=r"^fn raised in forward \(after 3 attempts\)$") as info:
        layer(X)
    assert isinstance(info.value.__cause__, ConnectionError) and layer.blackbox.retried == 2


# ---------------------------------------------------------------------------------- process pool
@pytest.fixture()
def spawn_pool():
    # 'spawn': forking a process that has started torch's thread pools can hang
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def test_a_killed_process_worker_is_retried_with_the_same_result(reference, spawn_pool, tmp_path):
    fn = _fns.KillOnce(str(tmp_path / "killed"))
    grad, blackbox = es_gradient(fn, executor=spawn_pool, max_batch=8, retries=1)
    assert (tmp_path / "killed").exists()  # a worker did die mid-batch
    assert torch.equal(grad, reference) and blackbox.retried >= 1


def test_a_killed_process_worker_without_retries_names_the_broken_pool(spawn_pool, tmp_path):
    fn = _fns.KillOnce(str(tmp_path / "killed"))
    with pytest.raises(
        BlackBoxError,
        match=r"the executor is broken \(a worker process died\?\) in forward; a broken pool "
        r"takes no new work: create a new one, or pass retries >= 1",
    ):
        es_gradient(fn, executor=spawn_pool, max_batch=8)


# ---------------------------------------------------------------------------------- dask
@pytest.fixture()
def dask_client():
    distributed = pytest.importorskip("distributed")
    import dask

    # a lost worker's task fails at once (KilledWorker) instead of being rescheduled by Dask, so
    # that the retry is diffbypass's; in-process workers (processes=False) start in about a second
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
            dashboard_address=":0", silence_logs=50,
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            yield client


def test_a_lost_dask_worker_is_retried_with_the_same_result(reference, dask_client, tmp_path):
    fn = _fns.CloseDaskWorkerOnce(str(tmp_path / "lost"))
    grad, blackbox = es_gradient(
        fn, executor=dask_client.get_executor(), max_batch=8, retries=2, timeout=60
    )
    assert (tmp_path / "lost").exists()  # a worker did leave mid-task
    assert torch.equal(grad, reference) and blackbox.retried >= 1


def test_a_lost_dask_worker_without_retries_is_named(dask_client, tmp_path):
    fn = _fns.CloseDaskWorkerOnce(str(tmp_path / "lost"))
    with pytest.raises(BlackBoxError, match=r"^the worker running forward was lost$") as info:
        es_gradient(fn, executor=dask_client.get_executor(), max_batch=8)
    assert type(info.value.__cause__).__name__ == "KilledWorker"


def test_losing_the_last_dask_worker_is_named_not_a_timeout(tmp_path):
    """With Dask's default allowed-failures, a task whose only worker left waits for a worker
    that never comes: at the timeout that is reported as the lost worker, not as fn hanging."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1", protocol="tcp",
        dashboard_address=":0", silence_logs=50,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        fn = _fns.CloseDaskWorkerOnce(str(tmp_path / "lost"))
        with pytest.raises(
            BlackBoxError,
            match=r"^the worker running forward was lost and the Dask cluster has no workers "
            r"left \(noticed after waiting 1 s\)$",
        ):
            es_gradient(fn, executor=client.get_executor(), timeout=1.0)


# ---------------------------------------------------------------------------------- hard timeouts
@pytest.fixture(scope="module")
def killable():
    with KillablePool(1) as pool:
        pool.result(pool.submit(_fns.wiggle, X))  # its worker has started
        yield pool


def test_a_killable_pool_ends_a_hung_evaluation_at_the_timeout(killable, tmp_path):
    fn = _fns.HangOnce(str(tmp_path / "hung"), seconds=600)
    start = time.monotonic()
    with pytest.raises(
        BlackBoxError,
        match=r"^fn timed out in forward after 0\.5 s \(its worker process was killed\)$",
    ):
        es_gradient(fn, executor=killable, timeout=0.5)
    assert time.monotonic() - start < 5  # at the timeout, not when the 600 s sleep ends
    # the pool has replaced the killed worker: the next evaluation runs on it
    grad, _ = es_gradient(_fns.wiggle, executor=killable, timeout=60)
    assert torch.equal(grad, es_gradient()[0])


def test_a_killed_hung_evaluation_is_retried_on_a_fresh_worker(reference, killable, tmp_path):
    fn = _fns.HangOnce(str(tmp_path / "hung"), seconds=600)
    grad, blackbox = es_gradient(fn, executor=killable, max_batch=8, timeout=0.5, retries=1)
    assert torch.equal(grad, reference) and blackbox.retried == 1


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_evaluation_also_ends_the_program_fn_started(killable, tmp_path):
    marker = str(tmp_path / "hung")
    with pytest.raises(BlackBoxError, match=r"its worker process was killed"):
        es_gradient(_fns.ProgramHangsOnce(marker), executor=killable, timeout=0.5)
    pid = int(open(marker + ".pid").read())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the program fn started survived the kill"


def test_a_worker_that_dies_is_replaced_and_retried(reference, killable, tmp_path):
    fn = _fns.KillOnce(str(tmp_path / "killed"))
    grad, blackbox = es_gradient(fn, executor=killable, max_batch=8, retries=1)
    assert (tmp_path / "killed").exists() and torch.equal(grad, reference)
    with pytest.raises(
        BlackBoxError, match=r"^the worker running forward was lost \(the worker process running "
        r"the task died \(exit code 1\)\)$",
    ):
        es_gradient(_fns.KillOnce(str(tmp_path / "again")), executor=killable)


def test_a_program_with_a_hung_fn_on_a_killable_pool_ends(tmp_path):
    """The hung call is killed, so the program finishes (a thread pool would wait 600 s)."""
    script = textwrap.dedent(f"""
        import torch
        from diffbypass import BlackBoxError, Bypass, KillablePool, StraightThrough
        from tests.core import _fns

        with KillablePool(1) as pool:
            layer = Bypass(_fns.HangOnce({str(tmp_path / "hung")!r}), StraightThrough(),
                           executor=pool, timeout=0.5)
            try:
                layer(torch.zeros(2, 3))
            except BlackBoxError as exc:
                print(exc)
        print("ended")
    """)
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "fn timed out in forward after 0.5 s (its worker process was killed)", "ended"
    ]
    assert time.monotonic() - start < 100
