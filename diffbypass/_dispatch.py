"""Running ``fn`` on chunks: in the calling thread or on an executor, with timeouts and retries.

Private to :class:`~diffbypass.BlackBox`. Every call of ``fn`` gets a fresh copy of its chunk
(made in the calling process), so a black box that writes into its input can corrupt neither
the caller's tensors nor the input of a retry.
"""

from __future__ import annotations

import pickle
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.reduction import ForkingPickler
from typing import Any, Callable

from torch import Tensor

from diffbypass.arguments import Packed
from diffbypass.base import BlackBoxError, BlackBoxFn
from diffbypass.killable_pool import KilledOnTimeout, KillablePool, WorkerLost

__all__: list[str] = []

#: modules whose frames in a traceback mean "raised while pickling the task", not by fn
_PICKLERS = ("pickle", "copyreg", "multiprocessing.reduction", "cloudpickle", "distributed.protocol")


def fn_name(fn: BlackBoxFn) -> str:
    """``fn``'s name as errors show it (a function's qualified name, else its class)."""
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class FnExited(Exception):
    """fn raised ``SystemExit`` (a wrapped script's ``sys.exit``, an argparse error)."""


def _call(fn: BlackBoxFn, x: Tensor, attempt: int = 0) -> Any:
    """Module-level so that process pools can pickle it.

    ``attempt`` only makes a retry a different task: Dask names a task by hashing its function
    and arguments, and would hand back the failed one. ``SystemExit`` becomes :class:`FnExited`:
    it would otherwise end the calling process (or a worker) without a word, and a retry would
    never see it.
    """
    try:
        return x(fn) if isinstance(x, Packed) else fn(x)
    except SystemExit as exc:
        raise FnExited(
            f"fn {fn_name(fn)} raised SystemExit with exit code {exc.code!r} (a script's "
            "sys.exit or an argparse error); call the script's work, not its command line"
        ) from None


def _is_pickling_error(exc: BaseException) -> bool:
    """Was ``exc`` raised while pickling the task for the executor (not by fn)?

    Decided by where and what was raised, not by words in a message fn chose: never when the
    traceback passes through :func:`_call` (fn was running); else a
    :class:`pickle.PicklingError`, a traceback through a pickler module, or the error that
    the C pickler raises for an object it cannot pickle (``Can't pickle local object ...``,
    ``cannot pickle '_thread.lock' object``).
    """
    tb, modules = exc.__traceback__, []
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == _call.__name__ and code.co_filename == _call.__code__.co_filename:
            return False
        modules.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    if isinstance(exc, pickle.PicklingError):
        return True
    if any(m == p or m.startswith(p + ".") for m in modules for p in _PICKLERS):
        return True
    return isinstance(exc, (TypeError, AttributeError)) and str(exc).lower().startswith(
        ("can't pickle", "cannot pickle")
    )


def check_picklable(fn: BlackBoxFn, executor: Executor | None) -> None:
    """A process pool pickles ``fn``: fail at construction, saying so, if it cannot."""
    if isinstance(executor, ProcessPoolExecutor):
        try:
            ForkingPickler.dumps(fn)
        except Exception as exc:
            raise TypeError(
                f"fn cannot be pickled for the process pool ({type(exc).__name__}: {exc}); define "
                "it at module level (no lambda, closure or local class), or use a thread pool"
            ) from exc


class _Failed(Exception):
    """An attempt that failed without fn raising (timeout, broken pool, lost worker)."""

    def __init__(self, message: str, broken: bool = False) -> None:
        super().__init__(message)
        self.broken = broken


class Dispatcher:
    """Evaluate ``fn`` on chunks, each attempted up to ``1 + retries`` times.

    On an executor, a chunk whose result does not arrive within ``timeout`` seconds (counted
    from when its result is first waited for) counts as a failed attempt. A retry on an executor
    that is broken (a worker process died) runs in the calling thread.
    """

    def __init__(
        self, fn: BlackBoxFn, executor: Executor | None, timeout: float | None, retries: int
    ) -> None:
        self.fn, self.executor, self.timeout, self.retries = fn, executor, timeout, retries
        self.retried = 0  #: attempts repeated after a failure, over the dispatcher's life

    def run(self, chunks: list[Tensor], where: Callable[[int], str]) -> list[Any]:
        if self.executor is None:
            return [self._local(c, i, where) for i, c in enumerate(chunks)]
        futures = [self._submit(c, where(i)) for i, c in enumerate(chunks)]
        return [self._collect(fut, c, where(i)) for i, (fut, c) in enumerate(zip(futures, chunks))]

    # ------------------------------------------------------------------ calling thread
    def _local(self, chunk: Tensor, i: int, where: Callable[[int], str]) -> Any:
        """Attempt the chunk in the calling thread (no timeout: it cannot be interrupted)."""
        for attempt in range(self.retries + 1):
            try:
                return _call(self.fn, chunk.clone())
            except Exception as exc:  # re-raised with the evaluation that failed
                if attempt == self.retries:
                    raise BlackBoxError(_raised(exc, where(i)) + self._after(attempt)) from exc
                self.retried += 1
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ executor
    def _submit(self, chunk: Tensor, what: str, retry: bool = False) -> Future | None:
        """A future, or ``None`` when the executor is broken (the attempt has failed)."""
        assert self.executor is not None
        try:
            if retry:  # a new task, not the failed one (see _call)
                return self.executor.submit(_call, self.fn, chunk.clone(), self.retried)
            return self.executor.submit(_call, self.fn, chunk.clone())
        except BrokenExecutor:
            return None
        except Exception as exc:
            state = "it has been shut down" if "shutdown" in str(exc).lower() else "it refused"
            raise BlackBoxError(
                f"could not submit {what} to the executor: {state} ({type(exc).__name__}: {exc}); "
                "pass a running executor, or none"
            ) from exc

    def _collect(self, fut: Future | None, chunk: Tensor, what: str) -> Any:
        broken = fut is None
        for attempt in range(self.retries + 1):
            if attempt > 0:
                self.retried += 1
                fut = None if broken else self._submit(chunk, what, retry=True)
                broken = fut is None
            try:
                if fut is not None:
                    return self._result(fut, what)
                if attempt == 0:
                    raise _Failed(self._broken(what))
                return _call(self.fn, chunk.clone())  # a broken executor takes no new work
            except BlackBoxError:
                raise  # not worth a retry (pickling)
            except _Failed as failure:
                error, cause, broken = str(failure), failure.__cause__, broken or failure.broken
            except Exception as exc:
                error, cause = _raised(exc, what), exc
            if attempt == self.retries:
                raise BlackBoxError(error + self._after(attempt)) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, fut: Future, what: str) -> Any:
        """The chunk's result; :class:`_Failed` for a timeout, a broken pool or a lost worker."""
        try:
            if isinstance(self.executor, KillablePool):
                return self.executor.result(fut, self.timeout)
            return fut.result(timeout=self.timeout)
        except KilledOnTimeout:
            raise _Failed(
                f"fn timed out in {what} after {self.timeout:g} s (its worker process was killed)"
            ) from None
        except FutureTimeout:
            if fut.done():  # fn itself raised a TimeoutError
                raise
            fut.cancel()
            if _dask_workers(self.executor) == 0:
                raise _Failed(
                    f"the worker running {what} was lost and the Dask cluster has no workers "
                    f"left (noticed after waiting {self.timeout:g} s)"
                ) from None
            raise _Failed(f"fn timed out in {what} after {self.timeout:g} s") from None
        except WorkerLost as exc:
            raise _Failed(f"the worker running {what} was lost ({exc})") from exc
        except BrokenExecutor as exc:
            raise _Failed(self._broken(what), broken=True) from exc
        except Exception as exc:
            if _is_pickling_error(exc):
                raise BlackBoxError(
                    f"could not pickle fn or its input to send {what} to the executor "
                    f"({type(exc).__name__}: {exc}); define fn at module level (no lambda, "
                    "closure or local class), or use a thread pool"
                ) from exc
            if type(exc).__name__ == "KilledWorker":  # distributed's
                raise _Failed(f"the worker running {what} was lost") from exc
            raise

    @staticmethod
    def _broken(what: str) -> str:
        return (
            f"the executor is broken (a worker process died?) in {what}; a broken pool takes no "
            "new work: create a new one, or pass retries >= 1 to re-run such chunks in the "
            "calling thread"
        )

    def _after(self, attempt: int) -> str:
        return "" if attempt == 0 else f" (after {attempt + 1} attempts)"


def _raised(exc: BaseException, what: str) -> str:
    """The message for fn's exception ``exc`` in the evaluation ``what``."""
    return f"{exc} in {what}" if isinstance(exc, FnExited) else f"fn raised in {what}"


def _dask_workers(executor: Executor | None) -> int | None:
    """The number of workers of a Dask executor's cluster (``None``: not Dask, or unknown)."""
    client = getattr(executor, "_client", None)
    if client is None or type(executor).__module__.split(".")[0] != "distributed":
        return None
    try:
        return len(client.nthreads())
    except Exception:  # the scheduler itself is gone: say nothing more than the timeout
        return None
