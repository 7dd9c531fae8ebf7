"""Bypass vs ES: gradient quality and cost of the estimators against input dimension and budget.

Writes ``benchmarks/results/estimators.json`` (raw results, a summary ``"table"``, ``"method"``,
``"machine"``) and three plots: ``estimators.png`` (cosine and time per gradient against the
input dimension), ``estimators_budget.png`` (cosine against fn evaluations per gradient) and
``estimators_training.png`` (the surrogate's cosine along its training trajectory).

Method
------
Black boxes, all mapping ``(B, d) -> (B, d)`` floats, with ``B = 1`` and ``d`` in 16, 256, 1625,
10000:

* ``smooth``: a fixed random network ``W2 tanh(W1 x + b1)`` with 32 hidden units. It has a true
  gradient (autograd), reported next to the smoothed one.
* ``sign``: elementwise ``sign(x)``. Smoothed gradient in closed form: ``2 phi(x/sigma)/sigma``.
* ``argmax``: one-hot of the argmax in each group of ``k`` coordinates (``k = 8``, but ``k = 65``
  at ``d = 1625``, the 25 x 65 star-DP shape). Smoothed probabilities by the exact 1-D integral
  ``p_i = E_z[prod_{j != i} Phi(z + (x_i - x_j)/sigma)]``, computed with 64 Gauss-Hermite nodes
  (relative error below 1e-7) and differentiated by autograd.
* ``rank`` (the structured box): the rank of each coordinate within its group of ``k``, divided
  by ``k - 1``. Smoothed ranks in closed form: ``sum_{j != i} Phi((x_i - x_j)/(sigma sqrt 2))/(k - 1)``.

Reference and score: the reference is the gradient of the Gaussian-smoothed box
``E[<v, f(x + sigma eps)>]`` at the same sigma that ES and the Surrogate use (``sigma = 0.5``
for every box), with a fresh ``v ~ N(0, I)`` at every step. The score is the cosine between the
estimated and the reference vector-Jacobian product; the JSON also holds the norm ratios. A zero
estimate (finite differences on a piecewise-constant box) scores 0. For ``d <= 256`` each
reference is checked against a large-sample antithetic ES (``--check-pairs`` pairs); the cosine,
relative standard error and z-scores of that check are in ``"reference_check"``.

Trajectory: for every (box, d) the input drifts slowly and stays N(0, I) distributed:
``x_{t+1} = sqrt(1 - rho^2) x_t + rho xi_t`` with ``rho = 0.05``. The Surrogate trains along
the trajectory as it would in real use, with one fit (S evaluations of fn, then ``fit_steps``
Adam steps) and one backward pass per step. It is scored in windows of ``--repeats`` steps after
100, 300 (the main result) and 1000 training steps (the last only for ``d <= 1625``), and at 30
log-spaced single steps for the learning curve. ES, FiniteDifference and StraightThrough are
stateless. They are scored at the inputs of the main window, with the same ``v``, after two
untimed warm-up calls. FiniteDifference runs only for ``d <= 1625``, since it costs ``2d + 1``
evaluations.

Statistics and timing: each score and time is the median and interquartile range over the
``--repeats`` (10) steps of a window. Time is the wall time of one forward and backward pass
through ``Bypass``; for the Surrogate this includes its S evaluations and its fit. The black
boxes here are cheap, so wall time mostly measures the estimators' own overhead. When fn is
expensive, the cost that matters is the number of fn evaluations per gradient: S + 1 for ES and
the Surrogate, 2d + 1 for FiniteDifference, 1 for StraightThrough. torch runs single-threaded
(``--threads 1``) so that timings hold up when other jobs share the machine. The load average
at the start and end of the run is recorded. Seeds are fixed: ``--seed`` + 1000 * box index + d
for the box, the trajectory and the noise.

Surrogate models: each matches the structure of its box, which is an advantage the bypass really
has, since known structure can be built into the model. The learning rate is the library default
(1e-3) and ``fit_steps = 5``, after a small search at d = 256 (lr 1e-3, 3e-3, 1e-2; fit_steps 5,
10). For ``sign`` and ``argmax``, a larger learning rate or more steps gave *lower* cosines,
because the fitted step sharpens.

* ``sign``: one MLP 1-32-1 shared by all coordinates.
* ``argmax``: one MLP k-64-k with a softmax output, shared by all groups and fitted by
  cross-entropy to the one-hot.
* ``rank``: one MLP k-64-k shared by all groups (MSE).
* ``smooth``: a dense MLP d-64-d (MSE), run with S = 10 and S = 100. A dense model shares no
  weights across coordinates, so it needs many more samples per step.

Run ``python benchmarks/estimators.py`` (full run, about 4-8 minutes on 2 busy CPU cores) or
add ``--quick`` (d = 16 and 256 only, under a minute).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from diffbypass import ES, Bypass, FiniteDifference, StraightThrough, Surrogate

SIGMA = 0.5
RHO = 0.05
HIDDEN = 32  # hidden units of the smooth black box
GH_Z, GH_W = np.polynomial.hermite_e.hermegauss(64)
GH_Z, GH_W = torch.tensor(GH_Z), torch.tensor(GH_W / math.sqrt(2 * math.pi))


def group_size(d: int) -> int:
    return 8 if d % 8 == 0 else 65


# ---------------------------------------------------------------------------- black boxes
@dataclass
class Box:
    name: str
    d: int
    fn: Callable[[Tensor], Tensor]  # the black box, float32 in and out
    smoothed: Callable[[Tensor], Tensor]  # E f(x + sigma eps), float64, differentiable
    exact: Callable[[Tensor], Tensor] | None = None  # f itself, differentiable (smooth box only)
    model: Callable[[], nn.Module] | None = None
    fit_loss: object = "mse"
    surrogate_samples: tuple[int, ...] = (10,)


class PerCoordinate(nn.Module):
    """One small MLP applied to every coordinate (elementwise boxes)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.unsqueeze(-1)).squeeze(-1)


class PerGroup(nn.Module):
    """One MLP k -> hidden -> k applied to every group of k coordinates (optionally softmax)."""

    def __init__(self, k: int, hidden: int = 64, softmax: bool = False) -> None:
        super().__init__()
        self.k, self.softmax = k, softmax
        self.net = nn.Sequential(nn.Linear(k, hidden), nn.Tanh(), nn.Linear(hidden, k))

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x.reshape(*x.shape[:-1], -1, self.k))
        return (out.softmax(-1) if self.softmax else out).flatten(-2)


def soft_cross_entropy(k: int) -> Callable[[Tensor, Tensor], Tensor]:
    def loss(prob: Tensor, onehot: Tensor) -> Tensor:
        return -(onehot * prob.clamp_min(1e-8).log()).sum(-1).mean() * k

    return loss


def make_box(name: str, d: int, gen: torch.Generator) -> Box:
    k = group_size(d)
    groups = lambda x: x.reshape(*x.shape[:-1], -1, k)  # noqa: E731
    if name == "sign":
        return Box(name, d, torch.sign, lambda x: 2 * torch.special.ndtr(x / SIGMA) - 1,
                   model=PerCoordinate)  # fmt: skip
    if name == "argmax":
        def argmax(x: Tensor) -> Tensor:
            g = groups(x)
            return torch.zeros_like(g).scatter_(-1, g.argmax(-1, keepdim=True), 1.0).flatten(-2)

        def smoothed(x: Tensor) -> Tensor:
            g = groups(x)
            a = (g.unsqueeze(-1) - g.unsqueeze(-2)) / SIGMA  # (..., i, j): (x_i - x_j)/sigma
            z = GH_Z.to(x.dtype)
            logs = torch.special.log_ndtr(a.unsqueeze(-1) + z).sum(-2)  # sum over j, incl. j = i
            logs = logs - torch.special.log_ndtr(z)  # remove the j = i factor Phi(z)
            return (logs.exp() * GH_W.to(x.dtype)).sum(-1).flatten(-2)

        return Box(name, d, argmax, smoothed, model=lambda: PerGroup(k, softmax=True),
                   fit_loss=soft_cross_entropy(k))  # fmt: skip
    if name == "rank":
        def rank(x: Tensor) -> Tensor:
            return groups(x).argsort(-1).argsort(-1).to(x.dtype).flatten(-2) / (k - 1)

        def smoothed(x: Tensor) -> Tensor:
            g = groups(x)
            p = torch.special.ndtr((g.unsqueeze(-1) - g.unsqueeze(-2)) / (SIGMA * math.sqrt(2)))
            return ((p.sum(-1) - 0.5) / (k - 1)).flatten(-2)

        return Box(name, d, rank, smoothed, model=lambda: PerGroup(k))
    if name == "smooth":
        w1 = torch.randn(HIDDEN, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
        b1 = 0.5 * torch.randn(HIDDEN, generator=gen, dtype=torch.float64)
        w2 = torch.randn(d, HIDDEN, generator=gen, dtype=torch.float64) / math.sqrt(HIDDEN)
        w1f, b1f, w2f = w1.float(), b1.float(), w2.float()

        def smooth(x: Tensor) -> Tensor:
            return torch.tanh(x @ w1f.T + b1f) @ w2f.T

        def exact(x: Tensor) -> Tensor:
            return torch.tanh(x @ w1.T + b1) @ w2.T

        def smoothed(x: Tensor) -> Tensor:  # E tanh(a + sigma |w_j| z) per hidden unit
            a, s = x @ w1.T + b1, SIGMA * w1.norm(dim=1)
            h = (torch.tanh(a.unsqueeze(-1) + s.unsqueeze(-1) * GH_Z) * GH_W).sum(-1)
            return h @ w2.T

        return Box(name, d, smooth, smoothed, exact=exact, surrogate_samples=(10, 100),
                   model=lambda: nn.Sequential(nn.Linear(d, 64), nn.Tanh(), nn.Linear(64, d)))  # fmt: skip
    raise ValueError(f"unknown box {name!r}")


def vjp_of(f: Callable[[Tensor], Tensor], x: Tensor, v: Tensor) -> Tensor:
    xx = x.double().requires_grad_(True)
    (g,) = torch.autograd.grad(f(xx), xx, v.double())
    return g


def cosine(a: Tensor, b: Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-300))


# ---------------------------------------------------------------------------- measurement
def trajectory(d: int, steps: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    xs, vs = torch.empty(steps, 1, d), torch.randn(steps, 1, d, generator=gen)
    x = torch.randn(1, d, generator=gen)
    for t in range(steps):
        xs[t] = x
        x = math.sqrt(1 - RHO**2) * x + RHO * torch.randn(1, d, generator=gen)
    return xs, vs


def gradient(layer: Bypass, x: Tensor, v: Tensor) -> tuple[Tensor, float]:
    xx = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    layer(xx).backward(v)
    return xx.grad, time.perf_counter() - t0  # type: ignore[return-value]


def summary(values: list[float]) -> dict[str, object]:
    q = np.percentile(values, [25, 50, 75])
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]),
            "n": len(values), "values": [float(v) for v in values]}  # fmt: skip


def run_config(box: Box, xs: Tensor, vs: Tensor, windows: list[int], args: argparse.Namespace,
               seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:  # fmt: skip
    """All estimators on one (box, d); returns result rows and the surrogates' learning curves."""
    d, k, main = box.d, args.repeats, args.warmup_steps
    cache: dict[int, dict[str, Tensor]] = {}

    def refs(t: int) -> dict[str, Tensor]:
        if t not in cache:
            cache[t] = {"smoothed": vjp_of(box.smoothed, xs[t], vs[t])}
            if box.exact is not None:
                cache[t]["true"] = vjp_of(box.exact, xs[t], vs[t])
        return cache[t]

    rows: list[dict[str, object]] = []

    def record(estimator: str, samples: int | None, evals: int, steps: range, grads: list[Tensor],
               times: list[float], extra: dict[str, object] | None = None) -> None:  # fmt: skip
        row: dict[str, object] = {
            "box": box.name, "d": d, "group_size": group_size(d) if box.name in ("argmax", "rank")
            else None, "estimator": estimator, "samples": samples, "evals_per_gradient": evals,
            "sigma": SIGMA, "steps": [steps.start, steps.stop], "time_s": summary(times),
        }  # fmt: skip
        for name in refs(steps.start):
            ref = [refs(t)[name] for t in steps]
            row[f"cosine_{name}"] = summary([cosine(g, r) for g, r in zip(grads, ref)])
            row[f"norm_ratio_{name}"] = summary(
                [float(g.norm() / r.norm()) for g, r in zip(grads, ref)])
        row.update(extra or {})
        rows.append(row)

    def stateless(estimator: str, layer: Bypass, samples: int | None, evals: int) -> None:
        for t in (main, main + 1):  # untimed warm-up calls
            gradient(layer, xs[t], vs[t])
        res = [gradient(layer, xs[t], vs[t]) for t in range(main, main + k)]
        record(estimator, samples, evals, range(main, main + k), [g for g, _ in res],
               [s for _, s in res])  # fmt: skip

    for s in args.es_samples:
        gen = torch.Generator().manual_seed(seed + s)
        stateless(f"ES S={s}", Bypass(box.fn, ES(sigma=SIGMA, samples=s, generator=gen)), s, s + 1)
    if d <= args.fd_max_dim:
        stateless("FiniteDifference", Bypass(box.fn, FiniteDifference(eps=1e-3)), None, 2 * d + 1)
    stateless("StraightThrough", Bypass(box.fn, StraightThrough()), None, 1)

    curves = []
    last = max(windows) + k
    curve_steps = set(np.unique(np.geomspace(1, last, 30).round().astype(int)) - 1)
    for s in args.surrogate_samples or box.surrogate_samples:
        torch.manual_seed(seed + 7 * s)  # the surrogate's initial weights
        est = Surrogate(box.model(), sigma=SIGMA, samples=s, fit_steps=args.fit_steps,  # type: ignore[misc]
                        fit_loss=box.fit_loss, lr=args.lr,  # type: ignore[arg-type]
                        generator=torch.Generator().manual_seed(seed + 11 * s))  # fmt: skip
        layer = Bypass(box.fn, est)
        curve: dict[str, list[float]] = {"step": []}
        grads, times, fit = {}, {}, {}
        for t in range(last):
            g, sec = gradient(layer, xs[t], vs[t])
            grads[t], times[t], fit[t] = g, sec, est.stats.agreement_before  # type: ignore[union-attr]
            if t in curve_steps:
                curve["step"].append(t + 1)
                for name, ref in refs(t).items():
                    curve.setdefault(f"cosine_{name}", []).append(cosine(g, ref))
            if not any(w <= t < w + k for w in windows):
                del grads[t]
        for w in windows:
            steps = range(w, w + k)
            record(f"Surrogate S={s} @{w}", s, s + 1, steps, [grads[t] for t in steps],
                   [times[t] for t in steps],
                   {"trained_steps": w, "fit_agreement_before": summary([fit[t] for t in steps]),
                    "fit_metric": est.stats.metric})  # type: ignore[union-attr]  # fmt: skip
        curves.append({"box": box.name, "d": d, "estimator": f"Surrogate S={s}", "samples": s, **curve})
    return rows, curves


def reference_check(box: Box, x: Tensor, v: Tensor, pairs: int, seed: int) -> dict[str, object]:
    """Large-sample antithetic ES of the smoothed VJP, with per-coordinate standard errors."""
    gen = torch.Generator().manual_seed(seed)
    total, total_sq, chunk = torch.zeros(box.d, dtype=torch.float64), 0.0, 4096
    total_sq = torch.zeros(box.d, dtype=torch.float64)
    for start in range(0, pairs, chunk):
        n = min(chunk, pairs - start)
        eps = torch.randn(n, box.d, generator=gen, dtype=torch.float64)
        diff = box.fn((x + SIGMA * eps).float()).double() - box.fn((x - SIGMA * eps).float()).double()
        per = ((diff * v).sum(-1, keepdim=True) / (2 * SIGMA)) * eps  # one estimate per pair
        total += per.sum(0)
        total_sq += (per**2).sum(0)
    mean = total / pairs
    se = ((total_sq / pairs - mean**2) / (pairs - 1)).sqrt()
    ref = vjp_of(box.smoothed, x, v).flatten()
    z = (mean - ref) / se
    return {"box": box.name, "d": box.d, "pairs": pairs, "cosine": cosine(mean, ref),
            "relative_se": float(se.norm() / ref.norm()), "max_abs_z": float(z.abs().max()),
            "fraction_abs_z_below_2": float((z.abs() < 2).double().mean())}  # fmt: skip


# ---------------------------------------------------------------------------- output
def machine() -> dict[str, object]:
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numpy": np.__version__}  # fmt: skip


BOXES = ("smooth", "sign", "argmax", "rank")


def table(results: list[dict], dims: list[int]) -> dict[str, object]:
    cols = ["black box", "reference", "estimator", "fn evals / gradient"]
    cols += [f"cosine d={d}" for d in dims] + [f"ms / gradient d={d}" for d in dims]
    rows = []
    names = list(dict.fromkeys(r["estimator"] for r in results))
    for box in BOXES:
        for ref in ("smoothed", "true"):
            for est in names:
                sel = {r["d"]: r for r in results
                       if r["box"] == box and r["estimator"] == est and f"cosine_{ref}" in r}
                if not sel:
                    continue
                evals = "2d+1" if est == "FiniteDifference" else next(iter(sel.values()))["evals_per_gradient"]
                label = f"smoothed (sigma={SIGMA})" if ref == "smoothed" else "true gradient"
                cos = [round(sel[d][f"cosine_{ref}"]["median"], 3) if d in sel else None for d in dims]
                ms = [round(1e3 * sel[d]["time_s"]["median"], 3) if d in sel else None for d in dims]
                rows.append([box, label, est, evals, *cos, *ms])
    return {"columns": cols, "rows": rows}


def figures(warmup: int) -> list[dict[str, str]]:
    return [
        {"file": "estimators.png", "caption": "Median cosine (IQR bars) to the sigma-smoothed "
         "gradient and wall time per gradient against d; the surrogate after "
         f"{warmup} training steps."},
        {"file": "estimators_budget.png", "caption": "Median cosine against fn evaluations per "
         "gradient; dotted: sqrt((S/2)/(S/2+d+1)), antithetic ES on a linear function."},
        {"file": "estimators_training.png", "caption": "The surrogate's cosine at single steps "
         "along the training trajectory: it is a moving target, not a fixed estimator."},
    ]  # fmt: skip


def plot(data: dict, out: Path) -> None:
    """Draw the three PNGs from a result file's contents."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, curves, dims = data["results"], data["curves"], data["config"]["dims"]
    warmup = data["config"]["warmup_steps"]
    main = [r for r in results if r.get("trained_steps", warmup) == warmup]
    names = list(dict.fromkeys(r["estimator"] for r in main))
    colors = dict(zip(names, plt.cm.tab10.colors))
    fig, axes = plt.subplots(2, len(BOXES), figsize=(4.3 * len(BOXES), 7.5), squeeze=False)
    for j, box in enumerate(BOXES):
        for est in names:
            sel = sorted((r for r in main if r["box"] == box and r["estimator"] == est),
                         key=lambda r: r["d"])  # fmt: skip
            ds = [r["d"] for r in sel]
            for i, key in enumerate(("cosine_smoothed", "time_s")):
                if not sel:
                    continue
                scale = 1e3 if key == "time_s" else 1.0
                med = np.array([r[key]["median"] for r in sel]) * scale
                err = [med - np.array([r[key]["q25"] for r in sel]) * scale,
                       np.array([r[key]["q75"] for r in sel]) * scale - med]  # fmt: skip
                axes[i, j].errorbar(ds, med, yerr=err, marker="o", ms=4, capsize=3,
                                    color=colors[est], label=est)  # fmt: skip
            if sel and "cosine_true" in sel[0]:
                axes[0, j].plot(ds, [r["cosine_true"]["median"] for r in sel], ls=":", marker="x",
                                color=colors[est])  # fmt: skip
        extra = "\n(dotted, x: cosine to the true gradient)" if box == "smooth" else ""
        axes[0, j].set_title(f"{box}: cosine to the smoothed gradient{extra}", fontsize=9)
        axes[0, j].set_ylim(-0.1, 1.02)
        axes[0, j].set_ylabel("cosine (median, IQR)")
        axes[1, j].set_title(f"{box}: wall time per gradient (1 thread)", fontsize=9)
        axes[1, j].set_yscale("log")
        axes[1, j].set_ylabel("ms (median, IQR)")
        for ax in axes[:, j]:
            ax.set_xscale("log")
            ax.set_xticks(dims, [str(d) for d in dims])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel("input dimension d")
            ax.grid(alpha=0.3, which="both")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=len(names),
               fontsize=8)  # fmt: skip
    fig.suptitle(f"Estimators against input dimension (sigma={data['sigma']}, B=1, surrogate after "
                 f"{warmup} training steps)", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(out / "estimators.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(BOXES), figsize=(4.3 * len(BOXES), 4.0), squeeze=False)
    markers = dict(zip(dims, "os^Dv<>"))
    for j, box in enumerate(BOXES):
        ax = axes[0, j]
        for d in dims:
            sel = [r for r in main if r["box"] == box and r["d"] == d and r["estimator"] != "StraightThrough"]
            for r in sel:
                ax.scatter(r["evals_per_gradient"], r["cosine_smoothed"]["median"], marker=markers[d],
                           color=colors[r["estimator"]], s=30, zorder=3)  # fmt: skip
            es = sorted((r for r in sel if r["estimator"].startswith("ES")), key=lambda r: r["samples"])
            ax.plot([r["evals_per_gradient"] for r in es], [r["cosine_smoothed"]["median"] for r in es],
                    color="gray", lw=0.8, alpha=0.7)  # fmt: skip
            half = np.geomspace(5, 500, 30)  # antithetic ES: S/2 independent directions
            ax.plot(2 * half + 1, np.sqrt(half / (half + d + 1)), ls=":", color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(-0.1, 1.02)
        ax.set_xlabel("fn evaluations per gradient")
        ax.set_title(box, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("cosine to the smoothed gradient (median)")
    handles = [plt.Line2D([], [], color=colors[n], marker="o", ls="", label=n)
               for n in names if n != "StraightThrough"]  # fmt: skip
    handles += [plt.Line2D([], [], color="k", marker=markers[d], ls="", label=f"d={d}") for d in dims]
    handles += [plt.Line2D([], [], color="gray", ls=":", label="ES on a linear fn (theory)")]
    fig.legend(handles=handles, fontsize=8, loc="center right")
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(out / "estimators_budget.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(BOXES), figsize=(4.3 * len(BOXES), 3.8), squeeze=False)
    dcolors = dict(zip(dims, plt.cm.viridis(np.linspace(0, 0.9, len(dims)))))
    for j, box in enumerate(BOXES):
        ax = axes[0, j]
        for c in (c for c in curves if c["box"] == box):
            ls = "-" if c["samples"] == min(x["samples"] for x in curves) else "--"
            ax.plot(c["step"], c["cosine_smoothed"], color=dcolors[c["d"]], lw=1, ls=ls,
                    label=f"d={c['d']}, S={c['samples']}")  # fmt: skip
        ax.set_ylim(-0.1, 1.02)
        ax.set_xscale("log")
        ax.set_xlabel("surrogate training steps (one fit per step)")
        ax.set_title(f"{box}: Surrogate, cosine at single steps", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower right")
    axes[0, 0].set_ylabel("cosine to the smoothed gradient")
    fig.tight_layout()
    fig.savefig(out / "estimators_training.png", dpi=100)
    plt.close(fig)


METHOD = __doc__.split("Method\n------\n", 1)[1].rsplit("\nRun ", 1)[0].strip()  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])  # type: ignore[union-attr]
    p.add_argument("--quick", action="store_true",
                   help="d in 16, 256 only, fewer steps and repeats (about a minute)")  # fmt: skip
    p.add_argument("--dims", type=int, nargs="+", default=[16, 256, 1625, 10000])
    p.add_argument("--boxes", nargs="+", default=list(BOXES), choices=BOXES)
    p.add_argument("--es-samples", type=int, nargs="+", default=[10, 100, 1000])
    p.add_argument("--surrogate-samples", type=int, nargs="+", default=None,
                   help="surrogate S for every box (default: 10, and also 100 for the smooth box)")  # fmt: skip
    p.add_argument("--fit-steps", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup-steps", type=int, default=300,
                   help="surrogate steps before the main measurement; ES etc. use the same inputs")  # fmt: skip
    p.add_argument("--checkpoints", type=int, nargs="+", default=[100, 1000],
                   help="further surrogate measurement windows (steps trained)")  # fmt: skip
    p.add_argument("--long-max-dim", type=int, default=1625,
                   help="largest d for which checkpoints beyond --warmup-steps are run")  # fmt: skip
    p.add_argument("--repeats", type=int, default=10, help="measured steps per window")
    p.add_argument("--fd-max-dim", type=int, default=1625)
    p.add_argument("--check-pairs", type=int, default=100_000,
                   help="antithetic pairs of the large-sample ES check of each reference (d <= 256)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    p.add_argument("--replot", action="store_true",
                   help="only redraw the PNGs from the existing estimators.json in --out")  # fmt: skip
    args = p.parse_args(argv)
    if args.replot:
        plot(json.loads((args.out / "estimators.json").read_text(encoding="utf-8")), args.out)
        return
    if args.quick:
        args.dims = [d for d in args.dims if d <= 256]
        args.warmup_steps, args.checkpoints, args.repeats = 100, [300], 5
        args.check_pairs = 20_000
    torch.set_num_threads(args.threads)
    start, load_start = time.perf_counter(), os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    curves: list[dict] = []
    checks = []
    for b, name in enumerate(BOXES):
        if name not in args.boxes:
            continue
        for d in args.dims:
            seed = args.seed + 1000 * b + d
            gen = torch.Generator().manual_seed(seed)
            box = make_box(name, d, gen)
            windows = sorted({args.warmup_steps, *(w for w in args.checkpoints
                              if d <= args.long_max_dim or w < args.warmup_steps)})  # fmt: skip
            xs, vs = trajectory(d, max(windows) + args.repeats, gen)
            t0 = time.perf_counter()
            rows, curve = run_config(box, xs, vs, windows, args, seed)
            results += rows
            curves += curve
            if d <= 256:
                checks.append(reference_check(box, xs[args.warmup_steps], vs[args.warmup_steps],
                                              args.check_pairs, seed + 1))  # fmt: skip
            print(f"{name:>7} d={d:<6} {time.perf_counter() - t0:6.1f} s", file=sys.stderr, flush=True)
    info = machine()
    info["load_average_start_end"] = f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}"
    data = {
        "benchmark": "estimators",
        "title": "Bypass vs ES: cosine to the reference gradient and time per gradient",
        "method": METHOD.replace("``", ""),
        "machine": info,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "sigma": SIGMA, "rho": RHO, "batch": 1,
        "reference_check": checks,
        "table": table(results, args.dims),
        "figures": figures(args.warmup_steps),  # not "plots": docs/benchmarks.md places the figures itself
        "results": results,
        "curves": curves,
        "runtime_s": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    (args.out / "estimators.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    plot(data, args.out)
    print(f"wrote {args.out / 'estimators.json'} in {data['runtime_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
