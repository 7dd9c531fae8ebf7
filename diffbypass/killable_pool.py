"""``KillablePool``: an executor whose evaluations can be ended — hard timeouts for ``fn``.

A thread cannot be stopped from outside, and neither :class:`~concurrent.futures.ProcessPoolExecutor`
nor Dask lets a caller end one running task: after a timeout the hung call goes on, holds its
worker, and (in a thread) keeps the program from ending. ``KillablePool`` runs each task in a
worker process of its own slot; :meth:`KillablePool.kill` kills the process running a task and
a fresh one takes its place, so the pool keeps its size. :class:`~diffbypass.BlackBox` kills the
task of a chunk that timed out, so with this pool ``timeout=`` really ends a hung evaluation
and a retry finds a free worker (see :doc:`/reliability`).

Example:
    >>> import torch
    >>> from diffbypass import ES, Bypass, KillablePool
    >>> with KillablePool(2) as pool:  # doctest: +SKIP
    ...     layer = Bypass(my_simulator, ES(sigma=0.5, samples=8), executor=pool,
    ...                    timeout=30.0, retries=2)
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import Executor, Future
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any, Callable

from diffbypass.validation import int_at_least

__all__ = ["KillablePool", "WorkerLost"]


class WorkerLost(RuntimeError):
    """The process running a task was killed (:meth:`KillablePool.kill`) or died; the pool has
    replaced it."""


class KilledOnTimeout(FutureTimeout):
    """:meth:`KillablePool.result` ran out of time and killed the task's worker."""


def _worker(conn: Connection) -> None:
    """A worker process: run ``(fn, args, kwargs)`` tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # a group of its own: a kill also ends the programs fn started
    import diffbypass

    for name in diffbypass.__all__:  # the package's names load on first use (PEP 562): load them
        getattr(diffbypass, name)  # (torch too) now, never inside the first task's timeout
    conn.send(None)  # ready: started, and imported what the package imports
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            task = pickle.loads(data)
            if task is None:
                return
            fn, args, kwargs = task
            reply: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:  # fn's, or unpickling it; sent back to the caller
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # the result (or exception) could not be pickled
            conn.send((False, RuntimeError(f"could not send the task's result back: {exc!r}")))


class _Slot:
    """One worker process and the thread that feeds it tasks and waits for their results."""

    def __init__(self, pool: KillablePool) -> None:
        self.pool = pool
        self.current: Future | None = None
        self.killed = False
        self.process: Any = None
        self.conn: Connection | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True, name="KillablePool")
        self.thread.start()

    def _start(self) -> None:
        ours, theirs = self.pool._ctx.Pipe()
        self.process = self.pool._ctx.Process(target=_worker, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()
        self.conn = ours
        if self.process.sentinel in wait([ours, self.process.sentinel]) and not ours.poll():
            self.process.join()
            code, self.process = self.process.exitcode, None
            raise WorkerLost(f"a worker process failed to start (exit code {code})")
        ours.recv()

    def _stop(self) -> None:
        if self.process is not None:
            try:
                self.conn.send(None)  # type: ignore[union-attr]
            except OSError:
                pass
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.conn.close()  # type: ignore[union-attr]
            self.process = None

    def kill(self, fut: Future) -> bool:
        with self.pool._lock:
            if self.current is not fut or self.process is None:
                return False
            self.killed = True
            try:
                if hasattr(os, "killpg"):
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:  # pragma: no cover - Windows
                    self.process.kill()
            except ProcessLookupError:
                pass  # it has just ended
            return True

    def _loop(self) -> None:
        while True:
            item = self.pool._tasks.get()
            if item is None:
                self._stop()
                return
            fut, fn, args, kwargs = item
            if fut.cancelled():
                continue
            try:  # a task is pending until a ready worker has it: start-up is not its time
                if self.process is not None and not self.process.is_alive():
                    self.process.join()  # died while idle (or killed as it finished)
                    self.conn.close()  # type: ignore[union-attr]
                    self.process = None
                if self.process is None:
                    self._start()
            except BaseException as exc:
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(exc)
                continue
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                self.conn.send((fn, args, kwargs))  # type: ignore[union-attr]
            except BaseException as exc:  # pickling fn or its input
                fut.set_exception(exc)
                continue
            with self.pool._lock:
                self.current, self.killed = fut, False
                self.pool._started[fut] = time.monotonic()
            self._wait(fut)

    def _wait(self, fut: Future) -> None:
        conn, process = self.conn, self.process
        ready = wait([conn, process.sentinel])  # type: ignore[list-item]
        reply = None
        if conn in ready:
            try:
                reply = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                reply = None
            except Exception as exc:  # the reply could not be unpickled
                reply = (False, exc)
        with self.pool._lock:
            self.current = None
            self.pool._started.pop(fut, None)
            killed = self.killed
        if reply is not None:
            ok, value = reply
            fut.set_result(value) if ok else fut.set_exception(value)
            return
        process.join()
        conn.close()  # type: ignore[union-attr]
        self.process = None  # the next task starts a fresh worker
        how = "was killed (KillablePool.kill)" if killed else f"died (exit code {process.exitcode})"
        fut.set_exception(WorkerLost(f"the worker process running the task {how}"))


class KillablePool(Executor):
    """A pool of ``workers`` processes whose running tasks can be killed; a killed or dead worker
    is replaced by a fresh one.

    Use it as ``Bypass(..., executor=KillablePool(n), timeout=s)`` to get *hard* timeouts: a
    chunk whose result has not arrived after ``s`` seconds has its worker process killed (on
    POSIX with its process group: the programs ``fn`` started, unless they left the group), so
    the hung evaluation ends, the pool keeps ``n`` workers for the retry, and the program can exit.
    A worker that dies on its own is replaced as well (the task fails with :class:`WorkerLost`;
    with ``retries`` it runs again on the pool).

    Workers start at the first task of each slot. ``fn`` and its inputs are pickled (a
    module-level function or picklable object, as for a process pool); ``fn`` runs with
    ``SIGINT`` ignored, so Ctrl-C reaches the calling process only.

    Args:
        workers: number of worker processes (at most this many tasks run at once).
        mp_context: a :mod:`multiprocessing` context; default ``"spawn"`` (forking a process
            that has started torch's thread pools can hang).

    Leaving a ``with`` block waits for the running tasks, as for every executor; leaving it by
    an exception (e.g. the :class:`~diffbypass.BlackBoxError` of a timeout) kills them instead.
    """

    def __init__(self, workers: int = 1, *, mp_context: BaseContext | None = None) -> None:
        self.workers = int_at_least("workers", workers, 1)
        self._ctx = mp_context or multiprocessing.get_context("spawn")
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []
        self._started: dict[Future, float] = {}  # running tasks: when their worker got them
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Schedule ``fn(*args, **kwargs)`` in a worker process; returns its future."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fut: Future = Future()
            self._tasks.put((fut, fn, args, kwargs))
            if len(self._slots) < self.workers:
                self._slots.append(_Slot(self))
        return fut

    def result(self, future: Future, timeout: float | None = None) -> Any:
        """``future``'s result, allowing its task ``timeout`` seconds of *running* time (its time
        in the queue and a worker's start-up do not count); past that, its worker is killed and
        :class:`concurrent.futures.TimeoutError` raised. ``None``: wait as long as it takes."""
        if timeout is None:
            return future.result()
        while True:
            with self._lock:
                started = self._started.get(future)
            if started is not None or future.done():
                break
            try:  # queued, or its worker is starting
                return future.result(timeout=0.05)
            except FutureTimeout:
                continue
        try:
            left = timeout if started is None else timeout - (time.monotonic() - started)
            return future.result(timeout=max(left, 0.0))
        except FutureTimeout:
            if future.done() or not self.kill(future):
                return future.result()  # finished (or fn raised TimeoutError) meanwhile
            raise KilledOnTimeout(f"the task ran {timeout:g} s and its worker was killed") from None

    def kill(self, future: Future) -> bool:
        """End ``future``'s task: cancel it if it has not started, else kill its worker process
        (a fresh one takes its place). ``False`` if it had already finished."""
        if future.cancel():
            return True
        return any(slot.kill(future) for slot in list(self._slots))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, kill: bool = False) -> None:
        """Stop accepting tasks; workers exit once the queue is done.

        Args:
            wait: wait for the running tasks (and the workers) to end.
            cancel_futures: cancel the tasks that have not started.
            kill: kill the running tasks' workers instead of waiting for them.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slots = list(self._slots)
        if cancel_futures or kill:
            while True:
                try:
                    item = self._tasks.get_nowait()
                except queue.Empty:
                    break
                item[0].cancel()
        if kill:
            for slot in slots:
                if slot.current is not None:
                    slot.kill(slot.current)
        for _ in slots:
            self._tasks.put(None)
        if wait:
            for slot in slots:
                slot.thread.join()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self.shutdown(wait=True, kill=exc_type is not None)
        return False

    def __repr__(self) -> str:
        return f"KillablePool(workers={self.workers})"
