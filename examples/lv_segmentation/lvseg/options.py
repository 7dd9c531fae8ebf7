"""Options written once: dataclass fields that carry their help, and what is generated from them.

A configuration field is declared with :func:`option`; its help text, thesis value, metavar,
choices and bounds live in the field's metadata. From these, :func:`document` writes the
``Attributes:`` section of the dataclass docstring, :func:`add_arguments` adds one
command-line option per field (``--n-lines`` for ``n_lines``), and :func:`check_fields` checks
the type and bounds of every field of an instance (a hand-edited ``config.json`` as much as the
command line), so the config, its docs, its checks and the ``lvseg`` parser cannot drift apart.

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
import math
import numbers
import types
import typing
from typing import Any, Callable

__all__ = ["MAX_SEED", "add_arguments", "check_fields", "check_value", "document", "given_options",
           "option"]

#: The largest value of a seed option (what torch, NumPy and random all accept).
MAX_SEED = 2**32 - 1


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
    low: float | None = None,
    high: float | None = None,
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
        low: the smallest value allowed (numbers; checked by :func:`check_fields` and the parser).
        high: the largest value allowed: sizes are bounded, so that one bad value cannot ask
            for gigabytes.
    """
    metadata = {"help": help, "thesis": thesis, "metavar": metavar, "choices": choices,
                "parse": parse, "cli": cli, "low": low, "high": high}
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


def _expected(kind: Any, low: float | None, high: float | None) -> str:
    what = "an integer" if kind is int else "a number"
    low_, high_ = (v if isinstance(v, int) or v is None else f"{v:g}" for v in (low, high))
    if low is not None and high is not None:
        return f"{what} in [{low_}, {high_}]"
    if low is not None:
        return f"{what} >= {low_}"
    return f"{what} <= {high_}" if high is not None else what


def check_value(f: dataclasses.Field[Any], hint: Any, value: Any) -> Any:
    """``value`` of the field ``f`` (type hint ``hint``) checked against its type and bounds.

    Ints and floats must be finite numbers of their kind (no bools, no strings; an int is
    accepted for a float), bools ``True`` or ``False``, strings one of the field's ``choices``
    if it has them, and ``None`` only where the hint allows it.

    Raises:
        ValueError: ``NAME must be EXPECTED; got VALUE``.
    """
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(hint))
    if value is None and optional:
        return None
    kind = _scalar_type(hint)
    low, high = f.metadata.get("low"), f.metadata.get("high")
    choices = f.metadata.get("choices")
    none = " or None" if optional else ""
    if kind in (int, float):
        ok = isinstance(value, numbers.Integral if kind is int else numbers.Real)
        ok = ok and not isinstance(value, bool) and (
            isinstance(value, numbers.Integral) or math.isfinite(value))
        if ok:
            ok = (low is None or value >= low) and (high is None or value <= high)
        if not ok:
            raise ValueError(f"{f.name} must be {_expected(kind, low, high)}{none}; got {value!r}")
        return kind(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{f.name} must be True or False{none}; got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str) or (choices and value not in choices):
            expected = ("one of " + ", ".join(map(repr, choices))) if choices else "a string"
            raise ValueError(f"{f.name} must be {expected}{none}; got {value!r}")
    return value


def check_fields(instance: Any) -> None:
    """Check every bool, int, float and string field of the dataclass ``instance`` (:func:`check_value`).

    Float fields given as ints are converted to floats in place. Fields of other types (nested
    configs, tuples) are left to their owner.

    Raises:
        ValueError: naming the first field that is wrong, what it must be and what it is.
    """
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        if _scalar_type(hints[f.name]) in (bool, int, float, str):
            value = check_value(f, hints[f.name], getattr(instance, f.name))
            object.__setattr__(instance, f.name, value)


def _bounded(f: dataclasses.Field[Any], hint: Any, parse: Callable[[str], Any]
             ) -> Callable[[str], Any]:
    """The parser of ``--name``: ``parse``, then the field's bounds (an argparse error)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {_expected(_scalar_type(hint), None, None)}; got {text!r}") from None
        try:
            return check_value(f, hint, value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def add_arguments(
    parser: argparse.ArgumentParser | Any,
    cls: type,
    *,
    defaults: Any = None,
    skip: tuple[str, ...] = (),
) -> list[str]:
    """Add ``--name`` for every command-line field of the dataclass ``cls``.

    A ``bool`` field becomes a flag (``--name`` sets it to ``True``).

    Options absent from the command line are absent from the parsed namespace
    (``argparse.SUPPRESS``), so a caller can tell "not given" from any value. A field without a
    default is a required option.

    Args:
        parser: the parser (or argument group) to add to.
        cls: the dataclass.
        defaults: an instance whose values are shown as ``(default ...)`` in the help
            (``None``: the fields' own defaults, so no instance, whose checks may need
            torch, is built for ``--help``).
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
        elif f.default is not None and _scalar_type(hints[f.name]) is not bool:
            # (None is explained in the help)
            shown = f.default if defaults is None else getattr(defaults, f.name)
            if shown is not dataclasses.MISSING:
                text += f" (default {shown})"
        kwargs: dict[str, Any] = {"help": text, "default": argparse.SUPPRESS, "dest": f.name,
                                  "required": required}
        if _scalar_type(hints[f.name]) is bool:  # a flag: present means True
            kwargs["action"] = "store_true"
        elif meta.get("choices"):
            kwargs["choices"] = list(meta["choices"])
        else:
            kwargs["metavar"] = meta.get("metavar") or f.name.upper()
            kwargs["type"] = _bounded(f, hints[f.name],
                                      meta.get("parse") or _scalar_type(hints[f.name]))
        parser.add_argument("--" + f.name.replace("_", "-"), **kwargs)
        added.append(f.name)
    return added


def given_options(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (:func:`add_arguments` leaves absent ones
    out of ``args``), by field name."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
