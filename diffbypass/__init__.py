"""diffbypass: train PyTorch models through black boxes.

``Bypass(fn, estimator)`` returns ``fn``'s exact output in the forward pass and asks a gradient
estimator for the input gradient in the backward pass:

* :class:`Surrogate` — the differentiable bypass: a network fitted to ``fn`` around the input;
* :class:`ES` — Gaussian-smoothing evolution strategy;
* :class:`Perturbed` (+ :class:`FenchelYoungLoss`), :class:`DBB` — the perturbed-optimizer and
  blackbox-differentiation estimators of decision-focused learning;
* :class:`GuidedES`, :class:`Gated` (+ :class:`ReplayBuffer`) — ES guided by a surrogate, and a
  surrogate gated by an online fidelity check;
* :class:`StraightThrough`, :class:`FiniteDifference` — for comparison and checks.

ES, Perturbed and GuidedES are configurations of one Monte-Carlo core
(:mod:`diffbypass.smoothing`, with the distributions of :mod:`diffbypass.noise`); every reporting
estimator and training loop registers its loggers through :mod:`diffbypass.hooks`; what each
estimator does under DDP is in :mod:`diffbypass.distributed`.
"""

from __future__ import annotations

from diffbypass import distributed, hooks, losses, noise, plugins, smoothing, validation
from diffbypass.base import BlackBoxError, BlackBoxFn, Estimator, Predictor, Reporter
from diffbypass.blackbox import BlackBox
from diffbypass.bypass import Bypass
from diffbypass.check import GradientCheck, check_gradient
from diffbypass.estimators import (
    DBB,
    ES,
    FenchelYoungLoss,
    FiniteDifference,
    Gated,
    GateStats,
    GuidedES,
    Perturbed,
    StraightThrough,
    Surrogate,
)
from diffbypass.killable_pool import KillablePool, WorkerLost
from diffbypass.losses import FitLoss
from diffbypass.plugins import Plugin
from diffbypass.replay import ReplayBuffer
from diffbypass.sampler import NoiseSampler, Relative
from diffbypass.stats import ESStats, FitStats

__all__ = [
    "BlackBox",
    "BlackBoxError",
    "BlackBoxFn",
    "Bypass",
    "DBB",
    "ES",
    "ESStats",
    "Estimator",
    "FenchelYoungLoss",
    "FiniteDifference",
    "FitLoss",
    "FitStats",
    "GateStats",
    "Gated",
    "GradientCheck",
    "GuidedES",
    "KillablePool",
    "NoiseSampler",
    "Perturbed",
    "Plugin",
    "Predictor",
    "Relative",
    "ReplayBuffer",
    "Reporter",
    "StraightThrough",
    "Surrogate",
    "WorkerLost",
    "check_gradient",
    "distributed",
    "hooks",
    "losses",
    "noise",
    "plugins",
    "smoothing",
    "validation",
]

__version__ = "0.1.0"
