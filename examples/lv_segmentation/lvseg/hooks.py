"""Hooks of the training loop: the metrics log, the progress bar and the rim warning.

The loop (:class:`lvseg.train.Trainer`) prints nothing itself: it calls its hooks with one event
dict per training step and per validation, and one at the end. :class:`MetricsLog` (always
attached: the run's ``metrics.jsonl``), :class:`ProgressBar` (tqdm, attached by the command) and
:class:`RimWarning` (attached by the command) are such hooks; :func:`read_metrics` reads the
log back, tolerating a partial last line.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from lvseg.star import training_fell

if TYPE_CHECKING:
    from lvseg.train import Trainer

__all__ = ["Hook", "MetricsLog", "ProgressBar", "RimWarning", "read_metrics"]

#: A hook: ``hook(trainer, event)`` with ``event["event"]`` in ``step``, ``validation``, ``end``.
Hook = Callable[["Trainer", dict[str, Any]], None]


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a ``metrics.jsonl`` file, in order.

    A last line that is not valid JSON (the process was killed while appending it) is dropped
    with a :class:`UserWarning` naming the file; an invalid line before it is an error.

    Raises:
        ValueError: naming the file and line of an invalid line that is not the last.
    """
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise ValueError(
                    f"{path} line {number} is not valid JSON; repair or delete that line"
                ) from None
            warnings.warn(f"{path}: dropped a partial last line (the process was stopped while "
                          f"writing it): {line[:60]!r}", stacklevel=2)
    return events


class MetricsLog:
    """Hook appending every event as one JSON line to ``path`` (the run's ``metrics.jsonl``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __call__(self, trainer: Trainer, event: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(event) + "\n")


class ProgressBar:
    """Hook showing a tqdm bar with the live loss, validation Dice and surrogate agreement."""

    def __init__(self, **tqdm_kwargs: Any) -> None:
        self.kwargs = tqdm_kwargs
        self.bar: Any = None
        self.postfix: dict[str, str] = {}

    def __call__(self, trainer: Trainer, event: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        if self.bar is None:
            self.bar = tqdm(total=trainer.config.iterations, initial=trainer.iteration - 1,
                            desc=trainer.config.method, **self.kwargs)
        if event["event"] == "step":
            self.bar.update(1)
            self.postfix["loss"] = f"{event['loss']:.4f}"
            if event.get("agreement") is not None:
                self.postfix["agree"] = f"{event['agreement']:.2f}"
        elif event["event"] == "validation":
            self.postfix["dice"] = f"{event['dice']:.3f}"
            self.postfix["best"] = f"{event['best_dice']:.3f}"
        elif event["event"] == "end":
            self.bar.close()
            return
        self.bar.set_postfix(self.postfix, refresh=False)


class RimWarning:
    """Hook warning once (on standard error) when the DP contour lies at the star's rim on most
    validation images: the training fell to contours that fill the star (the validation event's
    ``at_rim``, :func:`lvseg.star.at_rim`; the rule: :func:`lvseg.star.training_fell`).
    ``best.pt`` keeps the best checkpoint before it."""

    #: Where the fall is described.
    SEE = "benchmarks/lv_stability/README.md, 'Augmentation on the demo data'"

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.warned = False

    def __call__(self, trainer: Trainer, event: dict[str, Any]) -> None:
        n = len(trainer.data.val)
        if (self.warned or event["event"] != "validation"
                or not training_fell(event.get("at_rim", 0), n)):
            return
        from tqdm.auto import tqdm  # written above a progress bar, if one is shown

        self.warned = True
        tqdm.write(f"lvseg: warning: iteration {event['iteration']}: the DP contour lies at the "
                   f"star's rim on {event['at_rim']} of {n} validation images (the training "
                   f"fell; best.pt keeps iteration {event['best_iteration']}, Dice "
                   f"{event['best_dice']:.3f}); another --seed or --augment may not fall: "
                   f"{self.SEE}", file=self.stream or sys.stderr)
