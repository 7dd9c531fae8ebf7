"""Plugins: a typed record each plugin exports, found through the ``diffbypass.plugins`` entry points.

A plugin is a distribution that declares, in its ``pyproject.toml``::

    [project.entry-points."diffbypass.plugins"]
    stardp = "diffbypass_stardp"

where the entry point refers to a module that exports a :class:`Plugin` record as ``PLUGIN``
(or to the record itself, ``"diffbypass_stardp:PLUGIN"``). :func:`load` returns that record: the
plugin's name and version, its black box factory, its default surrogate factory and its fit
loss. Only installed entry points are loaded: nothing is imported from names found in
configuration files.

Example:
    >>> "stardp" in available()
    True
    >>> stardp = load("stardp")
    >>> stardp.name, stardp.fit_loss
    ('stardp', 'ce')
    >>> from diffbypass import Bypass, Surrogate
    >>> layer = Bypass(stardp.blackbox(), Surrogate(stardp.surrogate(), fit_loss=stardp.fit_loss))
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Callable

from torch import nn

from diffbypass.base import BlackBoxFn
from diffbypass.losses import FitLossSpec, fit_loss as _fit_loss
from diffbypass.validation import instance_of

__all__ = ["GROUP", "Plugin", "available", "load"]

GROUP = "diffbypass.plugins"
"""The entry-point group that plugins register under."""


@dataclass(frozen=True)
class Plugin:
    """What a plugin offers, in one typed record (its module exports it as ``PLUGIN``).

    Attributes:
        name: the plugin's name, the same as its entry point's name.
        version: the plugin's version (usually its ``__version__``).
        blackbox: the black box factory: ``blackbox(**settings)`` returns the function
            :class:`~diffbypass.Bypass` wraps (a callable on a batch ``(B, ...)``).
        surrogate: the default surrogate factory: ``surrogate(**settings)`` returns an
            ``nn.Module`` fitted to the black box by :class:`~diffbypass.Surrogate`.
        fit_loss: the surrogate's fit loss, ``"mse"``, ``"ce"`` or a
            :class:`~diffbypass.losses.FitLoss`, matching the black box's output.
    """

    name: str
    version: str
    blackbox: Callable[..., BlackBoxFn]
    surrogate: Callable[..., nn.Module]
    fit_loss: FitLossSpec

    def __post_init__(self) -> None:
        instance_of("name", self.name, str)
        instance_of("version", self.version, str)
        if not self.name:
            raise ValueError("name must be a non-empty string; got ''")
        for field in ("blackbox", "surrogate"):
            value = getattr(self, field)
            if not callable(value):
                raise TypeError(f"{field} must be a callable factory; got {type(value).__name__}")
        _fit_loss(self.fit_loss)  # "fit_loss must be 'mse', 'ce' or a callable; got ..."


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Names of the installed plugins, sorted."""
    return sorted(_entry_points())


def load(name: str) -> Plugin:
    """The :class:`Plugin` record of the installed plugin ``name``.

    Raises:
        LookupError: no installed plugin has that name; the message lists those that exist.
        ImportError: the plugin is installed but its module failed to import.
        TypeError: the entry point refers to neither a ``Plugin`` nor a module with ``PLUGIN``.
        ValueError: the record's name differs from the entry point's.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a plugin name (str); got {type(name).__name__}")
    eps = _entry_points()
    if name not in eps:
        have = ", ".join(sorted(eps)) or "none"
        raise LookupError(
            f"no diffbypass plugin named {name!r} is installed (installed: {have}); "
            f"install a distribution that registers it in the {GROUP!r} entry-point group"
        )
    try:
        found = eps[name].load()
    except Exception as exc:
        raise ImportError(
            f"the diffbypass plugin {name!r} is installed but {eps[name].value!r} failed to "
            f"import: {type(exc).__name__}: {exc}"
        ) from exc
    record = getattr(found, "PLUGIN", None) if isinstance(found, ModuleType) else found
    if not isinstance(record, Plugin):
        raise TypeError(
            f"the diffbypass plugin {name!r} (entry point {eps[name].value!r}) must refer to a "
            "diffbypass.plugins.Plugin, or to a module that exports one as PLUGIN; got "
            f"{type(found).__name__}" + (" without PLUGIN" if isinstance(found, ModuleType) else "")
        )
    if record.name != name:
        raise ValueError(
            f"the diffbypass plugin {name!r} exports a Plugin named {record.name!r}; the record's "
            "name must be the entry point's name"
        )
    return record
