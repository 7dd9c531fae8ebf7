"""Options written once: dataclass fields that carry their help, and what is generated from them.

A configuration field is declared with :func:`option`; its help text, thesis value, metavar
and choices live in the field's metadata. From these, :func:`document` writes the
``Attributes:`` section of the dataclass docstring and :func:`add_arguments` adds one
command-line option per field (``--n-lines`` for ``n_lines``), so the config, its docs and the
``lvseg`` parser cannot drift apart.

Example:
    >>> import argparse
    >>> from dataclasses import dataclass
    >>> @document
    ... @dataclass
    ... class Demo:
    ...     '''A demo config.'''
    ...     steps: int = option(10, "optimiser steps", thesis="100", metavar="K")
    >>> parser = argparse.ArgumentParser()
    >>> add_arguments(parser, Demo)
    ['steps']
    >>> parser.parse_args(["--steps", "3"]).steps
    3
    >>> "steps: optimiser steps [100]" in Demo.__doc__
    True
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Callable

__all__ = ["add_arguments", "document", "option"]


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    thesis: str | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    parse: Callable[[str], Any] | None = None,
    cli: bool = True,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field whose metadata documents it for the docstring and the parser.

    Args:
        default: the default value (omit for a required field).
        help: one phrase describing the option (no trailing full stop).
        thesis: the thesis' value, shown in brackets.
        metavar: the placeholder in ``--help`` (default: the field name in capitals).
        choices: the allowed strings (the parser refuses others).
        parse: converts the command-line text (default: the field's type).
        cli: ``False`` keeps the field off the command line.
        default_factory: as for :func:`dataclasses.field`.
    """
    metadata = {"help": help, "thesis": thesis, "metavar": metavar, "choices": choices,
                "parse": parse, "cli": cli}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _describe(f: dataclasses.Field[Any]) -> str:
    text = f.metadata.get("help", "")
    if f.metadata.get("thesis") is not None:
        text += f" [{f.metadata['thesis']}]"
    return text


def document(cls: type) -> type:
    """Class decorator: append an ``Attributes:`` section built from the fields' metadata."""
    lines = [f"        {f.name}: {_describe(f)}." for f in dataclasses.fields(cls)
             if f.metadata.get("help")]
    doc = (cls.__doc__ or "").rstrip()
    cls.__doc__ = doc + "\n\n    Attributes:\n" + "\n".join(lines) + "\n"
    return cls


def _scalar_type(hint: Any) -> Any:
    """``int`` for ``int | None``; the hint itself otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return hint


def add_arguments(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    defaults: Any = None,
    skip: tuple[str, ...] = (),
) -> list[str]:
    """Add ``--name`` for every command-line field of the dataclass ``cls``.

    Options absent from the command line are absent from the parsed namespace
    (``argparse.SUPPRESS``), so a caller can tell "not given" from any value. A field without a
    default is a required option.

    Args:
        parser: the parser (or argument group) to add to.
        cls: the dataclass.
        defaults: an instance whose values are shown as ``(default ...)`` in the help.
        skip: field names to leave out (the caller adds them itself).

    Returns:
        The names of the fields added.
    """
    hints = typing.get_type_hints(cls)
    added = []
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", False) or f.name in skip:
            continue
        meta = f.metadata
        text = _describe(f)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            text += " (required)"
        elif defaults is not None and f.default is not None:  # None is explained in the help
            text += f" (default {getattr(defaults, f.name)})"
        kwargs: dict[str, Any] = {"help": text, "default": argparse.SUPPRESS, "dest": f.name,
                                  "required": required}
        if meta.get("choices"):
            kwargs["choices"] = list(meta["choices"])
        else:
            kwargs["metavar"] = meta.get("metavar") or f.name.upper()
            kwargs["type"] = meta.get("parse") or _scalar_type(hints[f.name])
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)
        added.append(f.name)
    return added
