"""Ctrl-C during training: the first one asks the loop to stop after the current iteration (so
that a checkpoint holds it), a second one interrupts at once."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["StopRequest", "TrainingDiverged", "TrainingInterrupted", "stop_on_sigint"]


class TrainingDiverged(FloatingPointError):
    """The loss (or the U-Net's output) became NaN/inf; nothing from that iteration was saved."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training; ``last.pt`` holds the state after ``iteration``."""

    def __init__(self, run_dir: Path, iteration: int) -> None:
        super().__init__(f"training of {run_dir} interrupted after iteration {iteration}")
        self.run_dir, self.iteration = run_dir, iteration


class StopRequest:
    """Set by the first Ctrl-C inside :func:`stop_on_sigint`."""

    requested = False


@contextmanager
def stop_on_sigint(repeat: bool = False) -> Iterator[StopRequest]:
    """Catch SIGINT into a :class:`StopRequest` inside; the caller's handler is restored after.

    A second SIGINT interrupts at once, unless ``repeat`` (under torchrun, where it arrives
    twice and a process must reach the others' next collective; torchrun kills what does not
    stop). Outside the main thread (where signals cannot be handled) nothing is caught.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True
        if not repeat:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
