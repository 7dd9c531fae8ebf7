"""The solver glue and the method table of ``shortest_path.py`` (its method is there).

``solve_tensor`` is the black box handed to diffbypass; :class:`GridDP` is PyEPO's ``optModel``
over the same exact DP, and PyEPO's batch solves are routed to it, so every method uses one
solver. :data:`METHODS` maps a method's name to its library, the builder of its loss and its
hyperparameter grid: the one place where a method is named.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

import diffbypass as db
from benchmarks.shortest_path._grid import ARCS, GRID, SoftDP, shortest_paths

import pyepo  # noqa: E402  (pip install pyepo gurobipy: the `bench` extra)
import pyepo.func.utils as pyepo_utils  # noqa: E402
from pyepo.model.opt import optModel  # noqa: E402


# --------------------------------------------------------------------------- the solver
def solve_tensor(c: torch.Tensor) -> torch.Tensor:
    """The black box handed to diffbypass."""
    return torch.from_numpy(shortest_paths(c.detach().double().numpy())).to(c.dtype)


class GridDP(optModel):
    """PyEPO's optModel interface over the same DP; PyEPO's batch solves are routed to it."""

    def _getModel(self) -> tuple:
        self.arcs = ARCS
        return None, list(range(len(ARCS)))

    def setObj(self, c: Any) -> None:
        self._c = np.asarray(c, dtype=np.float64)

    def solve(self) -> tuple[np.ndarray, float]:
        sol = shortest_paths(self._c[None])[0]
        return sol, float(sol @ self._c)


_pyepo_batch = pyepo_utils._solve_batch_np


def _batched(cp: np.ndarray, optmodel: Any, processes: int, pool: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(optmodel, GridDP):
        return _pyepo_batch(cp, optmodel, processes, pool)
    sol = shortest_paths(np.asarray(cp, dtype=np.float64))
    return sol.astype(np.float32), (sol * cp).sum(1).astype(np.float32)


pyepo_utils._solve_batch_np = _batched  # same solver, batched, for PyEPO's methods too


def check_against_lp(cost: np.ndarray) -> float:
    """Largest |objective difference| between the DP and PyEPO's Gurobi LP model."""
    from pyepo.model.grb import shortestPathModel

    lp, worst = shortestPathModel(GRID), 0.0
    for c, s in zip(cost, shortest_paths(cost, count=False)):
        lp.setObj(c)
        worst = max(worst, abs(lp.solve()[1] - float(s @ c)))
    return worst


# --------------------------------------------------------------------------- methods
def decision(sol: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (sol * c).sum(1).mean()  # the true cost of the chosen path

def surrogate(hp: dict, seed: int, samples: int, structured: bool = True) -> db.Surrogate:
    torch.manual_seed(seed)
    net = SoftDP() if structured else nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 40))
    return db.Surrogate(net, sigma=hp["sigma"], samples=samples, fit_steps=1, lr=hp["fit_lr"],
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip


def bypass(make: Callable[[dict, int], db.Estimator]) -> Callable:
    def build(hp: dict, seed: int) -> Callable:
        layer = db.Bypass(solve_tensor, make(hp, seed))
        return lambda cp, c, w: decision(layer(cp), c)
    return build


def g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + 1000)


def fy_build(hp: dict, seed: int) -> Callable:
    loss = db.FenchelYoungLoss(solve_tensor, sigma=hp["sigma"], samples=10, sense="min", generator=g(seed))
    return lambda cp, c, w: loss(cp, w)


def spo_plus(hp: dict, seed: int) -> Callable:
    f = pyepo.func.SPOPlus(GridDP())
    return lambda cp, c, w: f(cp, c, w, (w * c).sum(1, keepdim=True))


def pfyl(hp: dict, seed: int) -> Callable:
    f = pyepo.func.perturbedFenchelYoung(GridDP(), n_samples=10, sigma=hp["sigma"], seed=seed)
    return lambda cp, c, w: f(cp, w)


def pyepo_layer(make: Callable[[optModel, dict, int], nn.Module]) -> Callable:
    """A PyEPO layer that returns solutions, scored by the true cost of its decision."""
    def build(hp: dict, seed: int) -> Callable:
        f = make(GridDP(), hp, seed)
        return lambda cp, c, w: decision(f(cp), c)
    return build


def seeded(build: Callable) -> Callable:
    """``build`` after ``torch.manual_seed(seed)`` (PyEPO's layers draw from the global RNG)."""
    def run(hp: dict, seed: int) -> Callable:
        torch.manual_seed(seed)
        return build(hp, seed)
    return run


LR = [0.01, 0.05]
SIG = [0.5, 1.0]
#: name -> (library, builder(hp, seed) -> loss(pred_cost, cost, sol), hyperparameter grid)
METHODS: dict[str, tuple[str, Callable | None, dict[str, list]]] = {
    "2-stage": ("PyEPO", None, {}),
    "SPO+": ("PyEPO", seeded(spo_plus), {"lr": LR}),
    "PFYL": ("PyEPO", seeded(pfyl), {"lr": LR, "sigma": SIG}),
    "DPO": ("PyEPO", seeded(pyepo_layer(lambda m, hp, s: pyepo.func.perturbedOpt(m, n_samples=10, sigma=hp["sigma"], seed=s))), {"lr": LR, "sigma": SIG}),
    "DBB (PyEPO)": ("PyEPO", seeded(pyepo_layer(lambda m, hp, s: pyepo.func.blackboxOpt(m, lambd=hp["lam"]))), {"lr": LR, "lam": [5.0, 20.0]}),
    "ES S=8": ("diffbypass", bypass(lambda hp, s: db.ES(sigma=hp["sigma"], samples=8, generator=g(s))), {"lr": LR, "sigma": SIG}),
    "ES S=16": ("diffbypass", bypass(lambda hp, s: db.ES(sigma=hp["sigma"], samples=16, generator=g(s))), {"lr": LR, "sigma": [1.0]}),
    "Perturbed": ("diffbypass", bypass(lambda hp, s: db.Perturbed(sigma=hp["sigma"], samples=8, sense="min", generator=g(s))), {"lr": LR, "sigma": SIG}),
    "FenchelYoungLoss": ("diffbypass", fy_build, {"lr": LR, "sigma": SIG}),
    "DBB": ("diffbypass", bypass(lambda hp, s: db.DBB(lam=hp["lam"])), {"lr": LR, "lam": [5.0, 20.0]}),
    "StraightThrough(-1)": ("diffbypass", bypass(lambda hp, s: db.StraightThrough(scale=-1)), {"lr": LR}),
    "Surrogate (MLP)": ("diffbypass", bypass(lambda hp, s: surrogate(hp, s, 8, False)), {"lr": LR, "sigma": [1.0], "fit_lr": [1e-3, 1e-2]}),
    "Surrogate (soft DP)": ("diffbypass", bypass(lambda hp, s: surrogate(hp, s, 8)), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "GuidedES (unbiased)": ("diffbypass", bypass(lambda hp, s: db.GuidedES(surrogate(hp, s, 2), sigma=hp["sigma"], samples=6, variant="unbiased", generator=g(s))), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "GuidedES (paper)": ("diffbypass", bypass(lambda hp, s: db.GuidedES(surrogate(hp, s, 2), sigma=hp["sigma"], samples=6, variant="paper", generator=g(s))), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "Gated": ("diffbypass", bypass(lambda hp, s: db.Gated(surrogate(hp, s, 4), probe=db.ES(sigma=hp["sigma"], samples=2, generator=g(s)), every=4, hysteresis=0.0)), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
}  # fmt: skip
