"""diffbypass: train PyTorch models through black boxes.

``Bypass(fn, estimator)`` returns ``fn``'s exact output in the forward pass and asks a gradient
estimator for the input gradient in the backward pass:

* :class:`Surrogate` — the differentiable bypass: a network fitted to ``fn`` around the input;
* :class:`ES` — Gaussian-smoothing evolution strategy;
* :class:`StraightThrough`, :class:`FiniteDifference` — for comparison and checks.
"""

from __future__ import annotations

from diffbypass import losses, plugins, validation
from diffbypass.base import BlackBoxError, BlackBoxFn, Estimator, Predictor, Reporter
from diffbypass.blackbox import BlackBox
from diffbypass.bypass import Bypass
from diffbypass.check import GradientCheck, check_gradient
from diffbypass.estimators import ES, FiniteDifference, StraightThrough, Surrogate
from diffbypass.sampler import NoiseSampler
from diffbypass.losses import FitLoss
from diffbypass.plugins import Plugin
from diffbypass.stats import ESStats, FitStats

__all__ = [
    "BlackBox",
    "BlackBoxError",
    "BlackBoxFn",
    "Bypass",
    "ES",
    "ESStats",
    "Estimator",
    "FiniteDifference",
    "FitLoss",
    "FitStats",
    "GradientCheck",
    "NoiseSampler",
    "Plugin",
    "Predictor",
    "Reporter",
    "StraightThrough",
    "Surrogate",
    "check_gradient",
    "losses",
    "plugins",
    "validation",
]

__version__ = "0.1.0"
