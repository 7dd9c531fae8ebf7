"""Guided ES, trust gating and replay along a 1000-step trajectory, at an equal fn budget.

The box is elementwise ``sign`` at d = 256 (the reference, the gradient of the Gaussian-smoothed
box at sigma = 0.5, is the closed form ``2 phi(x / sigma) / sigma * v``). The input drifts as in
``estimators.py`` (``x_{t+1} = sqrt(1 - rho^2) x_t + rho xi_t``, rho = 0.05) and a fresh
``v ~ N(0, I)`` comes at every step. Two surrogates: a per-coordinate MLP (shares the box's
structure; known to *sharpen* over time) and a dense MLP d-64-d (a poor guide at this d). Every
estimator spends about 11 fn evaluations per step (the JSON records the exact count). Scores:
cosine to the reference, mean over the windows 0-100, 100-300 and 300-1000 steps.

    python benchmarks/guided_gating.py           # about 2-4 minutes on 2 shared cores
    python benchmarks/guided_gating.py --quick   # 150 steps
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import diffbypass as db  # noqa: E402
from _harness import machine_info  # noqa: E402

D, SIGMA, RHO, LR, FIT_STEPS = 256, 0.5, 0.05, 1e-3, 5


class PerCoordinate(nn.Module):
    """One small MLP applied to every coordinate."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(-1)).squeeze(-1)


def model(kind: str) -> nn.Module:
    return PerCoordinate() if kind == "per-coordinate" else nn.Sequential(nn.Linear(D, 64), nn.Tanh(), nn.Linear(64, D))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def surrogate(kind: str, samples: int, seed: int, replay: bool = False) -> db.Surrogate:
    torch.manual_seed(seed)
    return db.Surrogate(model(kind), sigma=SIGMA, samples=samples, fit_steps=FIT_STEPS, lr=LR,
                        generator=gen(seed), replay=db.ReplayBuffer(200, radius=3 * SIGMA * math.sqrt(D)) if replay else None)  # fmt: skip


#: name -> factory(surrogate kind, seed) -> estimator
ESTIMATORS: dict[str, Callable[[str, int], db.Estimator]] = {
    "ES S=10": lambda k, s: db.ES(sigma=SIGMA, samples=10, generator=gen(s)),
    "Surrogate S=10": lambda k, s: surrogate(k, 10, s),
    "Surrogate S=10 + replay": lambda k, s: surrogate(k, 10, s, replay=True),
    "GuidedES unbiased (surrogate S=4, ES 6)": lambda k, s: db.GuidedES(surrogate(k, 4, s), sigma=SIGMA, samples=6, generator=gen(s + 1)),
    "GuidedES paper (surrogate S=4, ES 6)": lambda k, s: db.GuidedES(surrogate(k, 4, s), sigma=SIGMA, samples=6, variant="paper", generator=gen(s + 1)),
    "Gated (surrogate S=8, probe 2x2 every 4)": lambda k, s: db.Gated(
        surrogate(k, 8, s), probe=db.ES(sigma=SIGMA, samples=2, generator=gen(s + 1)), every=4),
}  # fmt: skip
WINDOWS = [(0, 100), (100, 300), (300, 1000)]


def reference(x: Tensor, v: Tensor) -> Tensor:
    return 2 * torch.exp(-0.5 * (x / SIGMA) ** 2) / (SIGMA * math.sqrt(2 * math.pi)) * v


def cosine(a: Tensor, b: Tensor) -> float:
    return float((a.double().flatten() @ b.double().flatten()) / (a.norm() * b.norm()).clamp_min(1e-300))


def trajectory(steps: int, seed: int) -> tuple[Tensor, Tensor]:
    g = gen(seed)
    xs, vs, x = torch.empty(steps, 1, D), torch.randn(steps, 1, D, generator=g), torch.randn(1, D, generator=g)
    for t in range(steps):
        xs[t], x = x, math.sqrt(1 - RHO**2) * x + RHO * torch.randn(1, D, generator=g)
    return xs, vs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="150 steps instead of 1000")
    p.add_argument("--seed", type=int, default=0, help="trajectory and initialisation seed")
    p.add_argument("--out", default="benchmarks/results", help="output folder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    steps = 150 if args.quick else 1000
    xs, vs = trajectory(steps, args.seed)
    curves: dict[str, dict[str, list[float]]] = {}
    evals: dict[str, dict[str, float]] = {}
    for kind in ("per-coordinate", "dense"):
        curves[kind], evals[kind] = {}, {}
        for name, make in ESTIMATORS.items():
            layer, cos = db.Bypass(torch.sign, make(kind, args.seed)), []
            for t in range(steps):
                x = xs[t].clone().requires_grad_(True)
                layer(x).backward(vs[t])
                cos.append(cosine(x.grad, reference(xs[t], vs[t])))
            curves[kind][name], evals[kind][name] = cos, layer.blackbox.instances / steps
            print(f"{kind:15s} {name:42s} " + " ".join(f"{np.mean(cos[a:b]):.3f}" for a, b in WINDOWS if a < steps)
                  + f"  ({evals[kind][name]:.1f} fn evals/step)", flush=True)  # fmt: skip
    rows = [[kind, name, f"{evals[kind][name]:.1f}"] + [f"{np.mean(c[a:b]):.3f}" if a < steps else "–" for a, b in WINDOWS]
            for kind in curves for name, c in curves[kind].items()]  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "guided_gating_quick" if args.quick else "guided_gating"
    result = {
        "table": {"columns": ["surrogate model", "estimator", "fn evals / step"] + [f"cosine, steps {a}-{b}" for a, b in WINDOWS], "rows": rows},
        "method": __doc__.split("\n\n")[1].replace("\n", " "), "machine": machine_info(),
        "config": {"d": D, "sigma": SIGMA, "rho": RHO, "lr": LR, "fit_steps": FIT_STEPS, "steps": steps, "seed": args.seed},
        "curves": curves,
    }  # fmt: skip
    (out / f"{stem}.json").write_text(json.dumps(result))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, kind in zip(axes, curves):
        for name, c in curves[kind].items():
            smooth = np.convolve(c, np.ones(25) / 25, mode="valid")
            ax.plot(np.arange(len(smooth)) + 12, smooth, label=name)
        ax.set(title=f"sign, d = {D}, {kind} surrogate", xlabel="step", xscale="log")
    axes[0].set_ylabel("cosine to the smoothed gradient (25-step mean)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)


if __name__ == "__main__":
    main()
