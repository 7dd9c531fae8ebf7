"""Gradient estimators, one per module; each is a :class:`~diffbypass.Estimator`."""

from __future__ import annotations

from diffbypass.estimators.dbb import DBB
from diffbypass.estimators.es import ES
from diffbypass.estimators.finite_difference import FiniteDifference
from diffbypass.estimators.gated import Gated, GateStats
from diffbypass.estimators.guided_es import GuidedES
from diffbypass.estimators.perturbed import FenchelYoungLoss, Perturbed
from diffbypass.estimators.straight_through import StraightThrough
from diffbypass.estimators.surrogate import Surrogate

__all__ = [
    "DBB",
    "ES",
    "FenchelYoungLoss",
    "FiniteDifference",
    "GateStats",
    "Gated",
    "GuidedES",
    "Perturbed",
    "StraightThrough",
    "Surrogate",
]
