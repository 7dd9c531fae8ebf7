"""One registry of estimator specs; ``test_contract.py`` runs the shared suite over every entry.

To put a new estimator under the whole forward/backward contract, append an :class:`EstimatorSpec`
to :data:`SPECS`: a name, a factory ``make(seed, problem)`` building a *fresh* estimator whose
randomness comes only from ``seed``, which fn outputs it supports, and whether it calls ``fn`` in
its backward pass. The black boxes the suite runs are the :data:`CASES` below; how the suite
builds and runs one pair is ``contract_run.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffbypass import (
    DBB,
    ES,
    Estimator,
    FiniteDifference,
    Gated,
    GuidedES,
    Perturbed,
    Relative,
    ReplayBuffer,
    StraightThrough,
    Surrogate,
)

from . import _fns
from ._fns import gen


# ---------------------------------------------------------------------------------- black boxes
@dataclass(frozen=True)
class FnCase:
    """A black box of the contract suite."""

    name: str
    fn: Callable[[Tensor], Any]
    kind: str  # "real" or "int"
    same_shape: bool
    out_shape: Callable[[tuple[int, ...]], tuple[int, ...]]  # per-item input -> output shape
    classes: int | None = None  # number of classes of an "int" fn


CASES = [
    FnCase("wiggle", _fns.wiggle, "real", True, lambda s: s),
    FnCase("np_sin", _fns.np_sin, "real", True, lambda s: s),
    FnCase("row_stats", _fns.row_stats, "real", False, lambda s: (2,)),
    FnCase("np_head64", _fns.np_head64, "real", False, lambda s: (1,)),
    FnCase("levels", _fns.levels, "int", True, lambda s: s, _fns.LEVEL_CLASSES),
    FnCase("np_levels", _fns.np_levels, "int", True, lambda s: s, _fns.LEVEL_CLASSES),
]


@dataclass(frozen=True)
class Problem:
    """What a factory may need to size a surrogate network."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dtype: torch.dtype
    classes: int | None


# ---------------------------------------------------------------------------------- estimators
def mlp(problem: Problem, seed: int, *, logits: bool = False) -> nn.Module:
    """A small surrogate network for ``problem``, initialised from ``seed`` only."""
    out_shape = problem.out_shape + ((problem.classes,) if logits else ())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(problem.in_shape), 16),
            nn.Tanh(),
            nn.Linear(16, math.prod(out_shape)),
            nn.Unflatten(1, out_shape),
        )
    return net.to(problem.dtype)


REAL, INT = frozenset({"real"}), frozenset({"int"})


@dataclass(frozen=True)
class EstimatorSpec:
    """One estimator configuration under the shared contract (the defaults: an estimator of
    real-valued fns of any output shape that calls ``fn`` in its backward and whose gradients
    depend on the seed, as ES does)."""

    name: str
    make: Callable[[int, Problem], Estimator]
    outputs: frozenset[str] = REAL  # fn output kinds it supports: "real", "int"
    same_shape_only: bool = False  # needs fn's output shape == input shape
    calls_fn_in_backward: bool = True
    stochastic: bool = True  # does the seed change its gradients?

    def supports(self, case: FnCase) -> bool:
        return case.kind in self.outputs and (case.same_shape or not self.same_shape_only)


def small_surrogate(p: Problem, seed: int, **kw: Any) -> Surrogate:
    """The surrogate of the surrogate specs and inside the guided and gated ones."""
    return Surrogate(mlp(p, seed), sigma=0.5, samples=4, fit_steps=2, lr=1e-2, generator=gen(seed),
                     **kw)


#: the options of an estimator that, like a surrogate, does not call fn in its backward
FITTED = {"calls_fn_in_backward": False}
#: ... and of straight-through, which is deterministic besides and keeps the input's shape
STRAIGHT = {"same_shape_only": True, "calls_fn_in_backward": False, "stochastic": False}

SPECS = [
    EstimatorSpec("es", lambda seed, p: ES(sigma=0.5, samples=8, generator=gen(seed))),
    EstimatorSpec("es_plain", lambda seed, p: ES(
        sigma=0.5, samples=7, antithetic=False, baseline=False, generator=gen(seed))),
    EstimatorSpec("es_ranks", lambda seed, p: ES(
        sigma=0.5, samples=8, shaping="centered_ranks", generator=gen(seed))),
    EstimatorSpec("surrogate_mse", lambda seed, p: small_surrogate(p, seed), **FITTED),
    EstimatorSpec(
        "surrogate_huber_sgd",  # callable fit loss, optimiser factory with state, antithetic noise
        lambda seed, p: Surrogate(
            mlp(p, seed), sigma=0.5, samples=4, fit_steps=2, fit_loss=F.smooth_l1_loss,
            optimizer=lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9), antithetic=True,
            generator=gen(seed),
        ),
        **FITTED,
    ),
    EstimatorSpec(
        "surrogate_ce",
        lambda seed, p: Surrogate(mlp(p, seed, logits=True), sigma=0.5, samples=4, fit_steps=2,
                                  fit_loss="ce", lr=1e-2, generator=gen(seed)),
        outputs=INT, **FITTED,
    ),
    EstimatorSpec("straight_through", lambda seed, p: StraightThrough(), **STRAIGHT),
    EstimatorSpec("straight_through_neg", lambda seed, p: StraightThrough(scale=-1), **STRAIGHT),
    EstimatorSpec("es_relative", lambda seed, p: ES(
        sigma=Relative(0.3), samples=8, generator=gen(seed))),
    EstimatorSpec(
        "es_per_coordinate",  # a 0-d tensor broadcasts to any item shape
        lambda seed, p: ES(sigma=torch.tensor(0.4), samples=6, generator=gen(seed)),
    ),
    EstimatorSpec("perturbed_gaussian", lambda seed, p: Perturbed(
        sigma=0.5, samples=8, generator=gen(seed))),
    EstimatorSpec("perturbed_gumbel_min", lambda seed, p: Perturbed(
        sigma=0.5, samples=6, noise="gumbel", sense="min", baseline=False, generator=gen(seed))),
    EstimatorSpec("dbb", lambda seed, p: DBB(lam=2.0), same_shape_only=True, stochastic=False),
    EstimatorSpec("guided_es_surrogate", lambda seed, p: GuidedES(
        small_surrogate(p, seed), sigma=0.5, samples=8, history=2, variant="unbiased",
        generator=gen(seed + 1))),
    EstimatorSpec(
        "guided_es_fn",  # a fixed guide function, no antithetic pairs
        lambda seed, p: GuidedES(
            lambda x, v: torch.ones_like(x), sigma=0.5, samples=5, alpha=0.4, antithetic=False,
            variant="unbiased", generator=gen(seed),
        ),
    ),
    EstimatorSpec("guided_es_paper", lambda seed, p: GuidedES(
        lambda x, v: x.sign(), sigma=0.5, samples=4, variant="paper", generator=gen(seed))),
    EstimatorSpec("gated", lambda seed, p: Gated(
        small_surrogate(p, seed), probe=ES(sigma=0.5, samples=4, generator=gen(seed + 1)),
        every=2, min_agreement=0.0)),
    EstimatorSpec("surrogate_replay", lambda seed, p: small_surrogate(
        p, seed, replay=ReplayBuffer(24, radius=3.0)), **FITTED),
    EstimatorSpec("finite_difference", lambda seed, p: FiniteDifference(eps=1e-3),
                  stochastic=False),
]

PAIRS = [(s, c) for s in SPECS for c in CASES if s.supports(c)]
