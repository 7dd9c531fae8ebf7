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

The names load on first use (PEP 562 ``__getattr__``): ``import diffbypass.validation`` starts no
torch, and ``from diffbypass import Bypass`` imports only what ``Bypass`` needs. Importing
:mod:`diffbypass` has no side effects to rely on.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what static tools see; at run time each name is imported on first use
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

#: The module each public name is imported from on first use (a module: itself). A test checks
#: that it, ``__all__`` and the ``TYPE_CHECKING`` imports above name the same things.
_SOURCES: dict[str, str] = {
    **{name: f"diffbypass.{name}" for name in (
        "distributed", "hooks", "losses", "noise", "plugins", "smoothing", "validation")},
    **dict.fromkeys(("BlackBoxError", "BlackBoxFn", "Estimator", "Predictor", "Reporter"),
                    "diffbypass.base"),
    "BlackBox": "diffbypass.blackbox",
    "Bypass": "diffbypass.bypass",
    **dict.fromkeys(("GradientCheck", "check_gradient"), "diffbypass.check"),
    **dict.fromkeys(("DBB", "ES", "FenchelYoungLoss", "FiniteDifference", "Gated", "GateStats",
                     "GuidedES", "Perturbed", "StraightThrough", "Surrogate"),
                    "diffbypass.estimators"),
    **dict.fromkeys(("KillablePool", "WorkerLost"), "diffbypass.killable_pool"),
    "FitLoss": "diffbypass.losses",
    "Plugin": "diffbypass.plugins",
    "ReplayBuffer": "diffbypass.replay",
    **dict.fromkeys(("NoiseSampler", "Relative"), "diffbypass.sampler"),
    **dict.fromkeys(("ESStats", "FitStats"), "diffbypass.stats"),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """A public name, imported on first use; any submodule (``diffbypass.bypass``) likewise."""
    source = _SOURCES.get(name)
    if source is None:
        try:
            value: Any = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise  # a dependency of the submodule is missing
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    elif source == f"{__name__}.{name}":
        value = importlib.import_module(source)
    else:
        value = getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
