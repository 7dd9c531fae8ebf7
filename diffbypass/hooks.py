"""Hooks: the one registry through which estimators and training loops report to loggers.

A :class:`Hooks` holds the callables of one kind (the fit hooks of a
:class:`~diffbypass.Surrogate` or :class:`~diffbypass.ES`, the gate hooks of
:class:`~diffbypass.Gated`, the event hooks of a training loop). Registering returns PyTorch's
:class:`~torch.utils.hooks.RemovableHandle`, as ``nn.Module.register_forward_hook`` does;
``handle.remove()`` detaches the hook. :func:`remove_hooks` empties every registry of a module
and its submodules, for work on a copy that must not reach the caller's loggers
(:func:`~diffbypass.check_gradient`).

Example:
    >>> hooks = Hooks()
    >>> seen = []
    >>> handle = hooks.add(lambda owner, record: seen.append(record))
    >>> hooks("me", 1)
    >>> handle.remove()
    >>> hooks("me", 2)
    >>> seen
    [1]
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["Hook", "Hooks", "remove_hooks"]

Hook = Callable[[Any, Any], None]
"""A hook: ``hook(owner, record)``; ``owner`` is the estimator or trainer that reports."""


class Hooks:
    """An ordered registry of hooks of one kind, called as ``hook(owner, record)``."""

    def __init__(self) -> None:
        # an OrderedDict: RemovableHandle keeps a weak reference to it (a plain dict has none)
        self._hooks: OrderedDict[int, Hook] = OrderedDict()

    def add(self, hook: Hook) -> RemovableHandle:
        """Register ``hook``; call ``remove()`` on the returned handle to detach it."""
        if not callable(hook):
            raise TypeError(f"hook must be callable as hook(owner, record); got {type(hook).__name__}")
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def __call__(self, owner: Any, record: Any) -> None:
        """Call every hook, in registration order (a hook may remove itself meanwhile)."""
        for hook in list(self._hooks.values()):
            hook(owner, record)

    def clear(self) -> None:
        """Detach every hook."""
        self._hooks.clear()

    def __len__(self) -> int:
        return len(self._hooks)

    def __repr__(self) -> str:
        return f"Hooks({len(self)} registered)"


def remove_hooks(module: nn.Module) -> nn.Module:
    """Detach every :class:`Hooks` entry of ``module`` and its submodules; returns ``module``."""
    for sub in module.modules():
        for value in vars(sub).values():
            if isinstance(value, Hooks):
                value.clear()
    return module
