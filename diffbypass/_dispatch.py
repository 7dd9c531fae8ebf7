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

from diffbypass.base import BlackBoxError, BlackBoxFn

__all__: list[str] = []


def _call(fn: BlackBoxFn, x: Tensor, attempt: int = 0) -> Any:
    """Module-level so that process pools can pickle it.

    ``attempt`` only makes a retry a different task: Dask names a task by hashing its function
    and arguments, and would hand back the failed one.
    """
    return fn(x)


def _is_pickling_error(exc: BaseException) -> bool:
    return isinstance(exc, pickle.PicklingError) or "pickle" in str(exc).lower()


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
        return [self._collect(fut, c, i, where) for i, (fut, c) in enumerate(zip(futures, chunks))]

    # ------------------------------------------------------------------ calling thread
    def _local(self, chunk: Tensor, i: int, where: Callable[[int], str]) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return _call(self.fn, chunk.clone())
            except Exception as exc:  # re-raised with the evaluation that failed
                if attempt == self.retries:
                    raise BlackBoxError(f"fn raised in {where(i)}{self._after(attempt)}") from exc
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

    def _collect(self, fut: Future | None, chunk: Tensor, i: int, where: Callable[[int], str]) -> Any:
        broken = fut is None
        for attempt in range(self.retries + 1):
            if attempt > 0:
                self.retried += 1
                fut = None if broken else self._submit(chunk, where(i), retry=True)
                broken = fut is None
                if broken:  # a broken executor takes no new work: retry in the calling thread
                    try:
                        return _call(self.fn, chunk.clone())
                    except Exception as exc:
                        error, cause = f"fn raised in {where(i)}", exc
            if fut is None and attempt == 0:
                error, cause = self._broken(where(i)), None
            elif fut is not None:
                try:
                    return fut.result(timeout=self.timeout)
                except FutureTimeout as exc:
                    if fut.done():  # fn itself raised a TimeoutError
                        error, cause = f"fn raised in {where(i)}", exc
                    else:
                        fut.cancel()
                        error, cause = f"fn timed out in {where(i)} after {self.timeout:g} s", None
                except BrokenExecutor as exc:
                    broken, error, cause = True, self._broken(where(i)), exc
                except Exception as exc:
                    if _is_pickling_error(exc):
                        raise BlackBoxError(
                            f"could not pickle fn or its input to send {where(i)} to the executor "
                            f"({type(exc).__name__}: {exc}); define fn at module level (no "
                            "lambda, closure or local class), or use a thread pool"
                        ) from exc
                    lost = type(exc).__name__ == "KilledWorker"  # distributed's
                    error = f"the worker running {where(i)} was lost" if lost else f"fn raised in {where(i)}"
                    cause = exc
            if attempt == self.retries:
                raise BlackBoxError(error + self._after(attempt)) from cause
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _broken(what: str) -> str:
        return (
            f"the executor is broken (a worker process died?) in {what}; a broken pool takes no "
            "new work: create a new one, or pass retries >= 1 to re-run such chunks in the "
            "calling thread"
        )

    def _after(self, attempt: int) -> str:
        return "" if attempt == 0 else f" (after {attempt + 1} attempts)"
