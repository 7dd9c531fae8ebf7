"""diffbypass: train PyTorch models through black boxes.

``Bypass(fn, estimator)`` returns ``fn``'s exact output in the forward pass and asks a gradient
estimator for the input gradient in the backward pass:

* :class:`Surrogate` — the differentiable bypass: a network fitted to ``fn`` around the input;
* :class:`ES` — Gaussian-smoothing evolution strategy;
* :class:`StraightThrough`, :class:`FiniteDifference` — for comparison and checks.
"""

from __future__ import annotations

from diffbypass import plugins, validation
from diffbypass.base import BlackBoxFn, Estimator
from diffbypass.blackbox import BlackBox, BlackBoxError
from diffbypass.bypass import Bypass
from diffbypass.check import GradientCheck, check_gradient
from diffbypass.estimators import ES, FiniteDifference, StraightThrough, Surrogate
from diffbypass.sampler import NoiseSampler
from diffbypass.stats import FitStats

__all__ = [
    "BlackBox",
    "BlackBoxError",
    "BlackBoxFn",
    "Bypass",
    "ES",
    "Estimator",
    "FiniteDifference",
    "FitStats",
    "GradientCheck",
    "NoiseSampler",
    "StraightThrough",
    "Surrogate",
    "check_gradient",
    "plugins",
    "validation",
]

__version__ = "0.1.0"
