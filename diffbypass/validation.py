"""The one vocabulary of argument checks used by the core, the plugins and the examples.

Every check validates one argument at an API boundary and either returns the value in its
canonical type or raises an error whose message names the argument, what was expected and what
was received — ``"sigma must be a positive number; got -1.0"``. Booleans are never
accepted as numbers (``True`` is an ``int`` in Python, never a sample count).

Plugins and examples import these instead of writing their own, so a rule (``delta >= 0``,
``fit_steps >= 0``) is written once, by the constructor that owns the argument.

Example:
    >>> from diffbypass.validation import int_at_least, positive_number, one_of
    >>> int_at_least("samples", 10, 1)
    10
    >>> positive_number("sigma", 0.5)
    0.5
    >>> one_of("mode", "mse", ("mse", "ce"))
    'mse'
    >>> positive_number("sigma", -1)
    Traceback (most recent call last):
    ...
    ValueError: sigma must be a positive number; got -1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = [
    "finite_number",
    "instance_of",
    "int_at_least",
    "nonnegative_number",
    "number_in",
    "one_of",
    "positive_number",
    "sense_sign",
    "shape",
]

#: The senses of an optimisation oracle, as ``Perturbed``, ``FenchelYoungLoss`` and ``DBB`` take them.
SENSES = ("max", "min")


def _real(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real)


def finite_number(name: str, value: Any) -> float:
    """``value`` as a finite ``float``; rejects bools, NaN, infinities and non-numbers."""
    if not _real(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return float(value)


def positive_number(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` ``> 0``."""
    if not _real(value) or not value > 0:
        raise ValueError(f"{name} must be a positive number; got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite positive number; got {value!r}")
    return float(value)


def nonnegative_number(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` ``>= 0``."""
    if not _real(value) or not math.isfinite(value) or not value >= 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return float(value)


def number_in(name: str, value: Any, low: float, high: float, *, closed: bool = True) -> float:
    """``value`` as a ``float`` in ``[low, high]`` (``closed=False``: the open interval)."""
    inside = _real(value) and math.isfinite(value) and (
        low <= value <= high if closed else low < value < high
    )
    if not inside:
        interval = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"{name} must be a number in {interval}; got {value!r}")
    return float(value)


def int_at_least(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` ``>= minimum``; rejects bools, floats and smaller values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def one_of(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}; got {value!r}")
    return value


def sense_sign(name: str, value: Any) -> float:
    """``+1.0`` for ``"max"`` (an argmax-type oracle), ``-1.0`` for ``"min"`` (argmin-type).

    The one check of an oracle's ``sense`` argument (one of :data:`SENSES`).
    """
    return 1.0 if one_of(name, value, SENSES) == "max" else -1.0


def instance_of(name: str, value: Any, types: type | tuple[type, ...]) -> Any:
    """``value`` if it is an instance of ``types``; a :class:`TypeError` naming them otherwise."""
    if not isinstance(value, types):
        wanted = types if isinstance(types, tuple) else (types,)
        expected = " or ".join(t.__qualname__ for t in wanted)
        raise TypeError(f"{name} must be a {expected}; got {type(value).__name__}")
    return value


def shape(name: str, value: Any, ndim: int, layout: str) -> tuple[int, ...]:
    """The shape of an array/tensor ``value`` that must have ``ndim`` dimensions.

    ``layout`` is the documented shape, e.g. ``"(B, N, M)"``; it appears in the message.
    """
    if getattr(value, "ndim", None) != ndim:
        got = tuple(value.shape) if hasattr(value, "shape") else type(value).__name__
        raise ValueError(f"{name} must have shape {layout}; got {got}")
    return tuple(int(s) for s in value.shape)
