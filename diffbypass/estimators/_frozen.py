"""Detached parameters for a surrogate's predictions, safe across threads (private)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from torch import nn

#: Guards every :class:`Freezer`'s count (held only to update it; one lock for the module, so
#: that a Surrogate holding a Freezer can still be deep-copied and pickled).
_LOCK = threading.Lock()


class Freezer:
    """``requires_grad`` off on a model's parameters while any caller is inside :meth:`frozen`.

    Detached parameters without ``torch.func.functional_call``'s per-call cost. Safe when several
    threads predict (or backpropagate) at once: the first to enter turns the parameters off, the
    last to leave turns them back on, so none of them runs with parameters another one has
    already restored. A plain object: updating it costs no ``nn.Module.__setattr__`` on the hot
    path.
    """

    __slots__ = ("inside", "thawed")

    def __init__(self) -> None:
        self.inside = 0
        self.thawed: list[nn.Parameter] = []

    @contextmanager
    def frozen(self, model: nn.Module) -> Iterator[None]:
        """Inside: ``model``'s parameters that required grad do not (restored after)."""
        with _LOCK:
            if self.inside == 0:
                self.thawed = [p for p in model.parameters() if p.requires_grad]
                for p in self.thawed:
                    p.requires_grad_(False)
            self.inside += 1
        try:
            yield
        finally:
            with _LOCK:
                self.inside -= 1
                if self.inside == 0:
                    for p in self.thawed:
                        p.requires_grad_(True)
                    self.thawed = []
