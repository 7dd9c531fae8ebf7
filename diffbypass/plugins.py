"""Plugin discovery through the ``diffbypass.plugins`` entry-point group.

A plugin is a distribution that declares, in its ``pyproject.toml``::

    [project.entry-points."diffbypass.plugins"]
    stardp = "diffbypass_stardp"

and whose entry point resolves to a module (or object) offering its black box, a default
surrogate, the fit loss and helpers. Only installed entry points are loaded: nothing is imported
from names found in configuration files.

Example:
    >>> "stardp" in available()
    True
    >>> stardp = load("stardp")
    >>> callable(stardp.StarDP)
    True
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

__all__ = ["GROUP", "available", "load"]

GROUP = "diffbypass.plugins"
"""The entry-point group that plugins register under."""


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """Names of the installed plugins, sorted."""
    return sorted(_entry_points())


def load(name: str) -> Any:
    """Load the installed plugin ``name`` (what its entry point refers to).

    Raises:
        LookupError: no installed plugin has that name; the message lists those that exist.
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
    return eps[name].load()
