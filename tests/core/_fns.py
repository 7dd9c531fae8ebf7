"""Black boxes (and the seeded generator) used by the core tests.

They live at module level so that process pools can pickle them (a spawned worker imports this
module by name). Functions used to compare executors use only elementwise ``+``, ``*`` and
``sign``, which are correctly rounded whatever the batch size, so any difference between
executors would come from the library, not from the function.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


def wiggle(x: Tensor) -> Tensor:
    """Same-shape, real, piecewise smooth: ``x^3 - 2x + sign(x)``."""
    return (x * x) * x - 2 * x + torch.sign(x)


def np_sin(x: Tensor) -> np.ndarray:
    """Same-shape, real, returned as a NumPy array of the input's dtype."""
    return np.sin(x.numpy())


def row_stats(x: Tensor) -> Tensor:
    """Shape-changing, real: per item ``(sum, max |x|)`` -> ``(B, 2)``."""
    flat = x.flatten(1)
    return torch.stack([flat.sum(1), flat.abs().amax(1)], dim=1)


def np_head64(x: Tensor) -> np.ndarray:
    """Shape-changing, real, NumPy float64 whatever the input dtype -> ``(B, 1)``."""
    return 2.0 * x.flatten(1)[:, :1].numpy().astype(np.float64)


def levels(x: Tensor) -> Tensor:
    """Same-shape integer class indices in {0, 1, 2}: ``[x > 0] + [x > 1]``."""
    return (x > 0).long() + (x > 1).long()


def np_levels(x: Tensor) -> np.ndarray:
    """The same classes from NumPy (``np.digitize``, int64)."""
    return np.digitize(x.numpy(), [0.0, 1.0]).astype(np.int64)


LEVEL_CLASSES = 3


def record_sizes(sizes: list[int]):
    """A same-shape fn that appends the batch size of every call to ``sizes`` (in-process only)."""

    def fn(x: Tensor) -> Tensor:
        sizes.append(int(x.shape[0]))
        return wiggle(x)

    return fn


def _first_call(marker: str) -> bool:
    """True exactly once across processes: whoever creates the ``marker`` file first."""
    import os

    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class KillOnce:
    """``wiggle``, but the first call (whichever process makes it) kills its own process.

    The marker file records that the kill happened, so a retry in a fresh worker, or in the
    calling process, evaluates normally. Picklable (a module-level class with a plain attribute).
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, x: Tensor) -> Tensor:
        import os

        if not _first_call(self.marker):
            return wiggle(x)
        os._exit(1)  # a worker lost mid-batch: no exception, no result


class CloseDaskWorkerOnce:
    """``wiggle``, but the first call closes the Dask worker running it, mid-task.

    For an in-process ``LocalCluster`` (fast to start), where a worker cannot be killed with
    ``os._exit``: the worker leaves the cluster while its task runs, as a killed one would, and
    the task's late result is never delivered.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, x: Tensor) -> Tensor:
        import functools
        import time

        from distributed import get_worker

        if not _first_call(self.marker):
            return wiggle(x)
        worker = get_worker()
        worker.loop.add_callback(functools.partial(worker.close, executor_wait=False, nanny=False))
        time.sleep(2)
        return wiggle(x) * 0  # a wrong value that must never arrive


class HangOnce:
    """``wiggle``, but the first call (whichever process makes it) sleeps ``seconds`` first:
    a hung evaluation that outlives the test unless something kills it."""

    def __init__(self, marker: str, seconds: float = 600.0) -> None:
        self.marker, self.seconds = marker, seconds

    def __call__(self, x: Tensor) -> Tensor:
        import time

        if _first_call(self.marker):
            time.sleep(self.seconds)
        return wiggle(x)


def exits(x: Tensor) -> Tensor:
    """A wrapped script: ``sys.exit(3)``, as its command line would on bad arguments."""
    import sys

    sys.exit(3)


class ExitOnce:
    """``wiggle``, but the first call raises ``SystemExit(3)`` (a transient script failure)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, x: Tensor) -> Tensor:
        import sys

        if _first_call(self.marker):
            sys.exit(3)
        return wiggle(x)


class ProgramHangsOnce:
    """``wiggle``, but the first call starts an external program that hangs (``sleep 600``),
    writes its pid to ``marker + ".pid"`` and waits for it, as a wrapped solver would."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __call__(self, x: Tensor) -> Tensor:
        import subprocess
        from pathlib import Path

        if _first_call(self.marker):
            child = subprocess.Popen(["sleep", "600"])
            Path(self.marker + ".pid").write_text(str(child.pid))
            child.wait()
        return wiggle(x)


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (every estimator's noise in the tests)."""
    return torch.Generator().manual_seed(seed)


def onehot_max(c: Tensor) -> Tensor:
    """The one-hot argmax oracle over the last dimension, in ``c``'s dtype."""
    return F.one_hot(c.argmax(-1), c.shape[-1]).to(c.dtype)


def onehot_min(c: Tensor) -> Tensor:
    """The one-hot argmin oracle over the last dimension, in ``c``'s dtype."""
    return F.one_hot(c.argmin(-1), c.shape[-1]).to(c.dtype)
