"""Gradient estimators, one per module; each is a :class:`~diffbypass.Estimator`."""

from __future__ import annotations

from diffbypass.estimators.es import ES
from diffbypass.estimators.finite_difference import FiniteDifference
from diffbypass.estimators.straight_through import StraightThrough
from diffbypass.estimators.surrogate import Surrogate

__all__ = ["ES", "FiniteDifference", "StraightThrough", "Surrogate"]
