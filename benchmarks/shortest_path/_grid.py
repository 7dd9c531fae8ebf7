"""The 5x5 grid DAG of PyEPO's shortest path: an exact batched DP and its soft (Gibbs) relaxation.

Arcs go right or down (PyEPO's ``_get_grid_arcs`` order: per row, the right arcs, then the down
arcs), so the shortest path from the top-left to the bottom-right node is a DP over the nodes in
order. ``SoftDP`` is the expected arc use of the Gibbs distribution over paths at temperature
tau, a structured surrogate model for ``benchmarks/shortest_path``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

GRID = (5, 5)
ARCS = [
    arc
    for i in range(GRID[0])
    for arc in [(i * GRID[1] + j, i * GRID[1] + j + 1) for j in range(GRID[1] - 1)]
    + ([(i * GRID[1] + j, (i + 1) * GRID[1] + j) for j in range(GRID[1])] if i < GRID[0] - 1 else [])
]
SRC = np.array([a for a, _ in ARCS])
INTO = {v: [k for k, (_, b) in enumerate(ARCS) if b == v] for v in range(GRID[0] * GRID[1])}
SOLVES = [0]  # instances solved, by every method (training only; evaluation is not counted)


def shortest_paths(cost: np.ndarray, count: bool = True) -> np.ndarray:
    """Exact shortest paths (B, 40) -> (B, 40) 0/1 on the right/down grid DAG, all B at once."""
    b, n = cost.shape[0], GRID[0] * GRID[1]
    dist, pred = np.zeros((b, n)), np.zeros((b, n), dtype=np.int64)
    for v in range(1, n):
        cand = np.stack([dist[:, SRC[k]] + cost[:, k] for k in INTO[v]], 1)
        best = cand.argmin(1)
        dist[:, v], pred[:, v] = cand[np.arange(b), best], np.array(INTO[v])[best]
    sol, cur = np.zeros_like(cost), np.full(b, n - 1)
    for _ in range(sum(GRID) - 2):
        arc = pred[np.arange(b), cur]
        sol[np.arange(b), arc] = 1.0
        cur = SRC[arc]
    SOLVES[0] += b * count
    return sol



def _levels() -> tuple[list, list, list, np.ndarray, np.ndarray]:
    """Anti-diagonals of the grid: an arc joins level t to t + 1, so each level is one tensor op."""
    n, cols = GRID[0] * GRID[1], GRID[1]
    levels = [[v for v in range(n) if v // cols + v % cols == t] for t in range(sum(GRID) - 1)]
    at = {v: i for lv in levels for i, v in enumerate(lv)}
    pad = lambda rows: torch.tensor([r + [r[0]] * (2 - len(r)) for r in rows])  # noqa: E731
    mask = lambda rows: torch.tensor([[0.0] * len(r) + [1e9] * (2 - len(r)) for r in rows])  # noqa: E731
    fwd, bwd = [], []
    for t in range(1, len(levels)):  # arcs into level t, from level t - 1
        rows = [[k for k, (_, b) in enumerate(ARCS) if b == v] for v in levels[t]]
        fwd.append((pad(rows), pad([[at[ARCS[k][0]] for k in r] for r in rows]), mask(rows)))
    for t in range(len(levels) - 1):  # arcs out of level t, into level t + 1
        rows = [[k for k, (a, _) in enumerate(ARCS) if a == v] for v in levels[t]]
        bwd.append((pad(rows), pad([[at[ARCS[k][1]] for k in r] for r in rows]), mask(rows)))
    flat = [v for lv in levels for v in lv]
    where = np.array([flat.index(v) for v in range(n)])
    return levels, fwd, bwd, where[SRC], where[[b for _, b in ARCS]]


LEVELS, FWD, BWD, ARC_SRC, ARC_DST = _levels()


class SoftDP(nn.Module):
    """A structured surrogate: expected arc use under the Gibbs distribution over grid paths,
    exp(-cost(path) / tau), with a learnt temperature and per-arc affine map of the costs (the
    solver is its tau -> 0 limit); soft-min forward-backward recursions over anti-diagonals."""

    def __init__(self) -> None:
        super().__init__()
        self.log_tau = nn.Parameter(torch.zeros(()))
        self.scale, self.shift = nn.Parameter(torch.ones(40)), nn.Parameter(torch.zeros(40))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        w = (c * self.scale + self.shift) / self.log_tau.exp()
        a = [torch.zeros(len(c), 1, dtype=c.dtype)]
        for arcs, src, big in FWD:
            a.append(-torch.logsumexp(-(a[-1][:, src] + w[:, arcs] + big.to(c.dtype)), 2))
        b = [torch.zeros(len(c), 1, dtype=c.dtype)]
        for arcs, dst, big in reversed(BWD):
            b.insert(0, -torch.logsumexp(-(w[:, arcs] + b[0][:, dst] + big.to(c.dtype)), 2))
        a_all, b_all = torch.cat(a, 1), torch.cat(b, 1)
        return torch.exp(a_all[:, -1:] - a_all[:, ARC_SRC] - w - b_all[:, ARC_DST])


