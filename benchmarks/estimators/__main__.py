"""Bypass vs ES: gradient quality and cost of the estimators against input dimension and budget.

Writes ``benchmarks/estimators/results/estimators.json`` (raw results, a summary ``"table"``, ``"method"``,
``"machine"``) and four plots: ``estimators.png`` (cosine per gradient against the
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

The estimators of issue #11, each at ES's smallest budget (about 11 fn evaluations per step;
the measured count is in the JSON): Perturbed (Gaussian, S = 10; stateless, like ES);
GuidedES (variant "paper") on a surrogate S = 4 with 6 ES samples; Gated on a surrogate S = 8
with two 2-sample ES probes every 4 steps (hysteresis 0, the rule this run measured); and, on
the smooth box only (the dense model, where replay matters), the Surrogate S = 10 with
ReplayBuffer(200, radius 3 sigma sqrt d). The trained ones use the box's surrogate model,
train along the same trajectory and are scored in the main window only.

Run ``python -m benchmarks.estimators`` (full run, about 30 minutes on 2 busy CPU cores) or
add ``--quick`` (d = 16 and 256 only, under a minute; written as ``estimators_quick.*``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmarks import _harness as h
from benchmarks._boxes import BOXES, RHO, SIGMA, Box, cosine, group_size, make_box, trajectory, vjp_of
from benchmarks.estimators._plot import figures, plot
from benchmarks.estimators._table import reference_check, table
from diffbypass import (ES, Bypass, Estimator, FiniteDifference, Gated, GuidedES, Perturbed,
                        ReplayBuffer, Reporter, StraightThrough, Surrogate)

# ---------------------------------------------------------------------------- measurement
def gradient(layer: Bypass, x: Tensor, v: Tensor) -> tuple[Tensor, float]:
    xx = x.clone().requires_grad_(True)
    t0 = time.perf_counter()
    layer(xx).backward(v)
    return xx.grad, time.perf_counter() - t0  # type: ignore[return-value]


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
            "sigma": SIGMA, "steps": [steps.start, steps.stop], "time_s": h.summary(times),
        }  # fmt: skip
        for name in refs(steps.start):
            ref = [refs(t)[name] for t in steps]
            row[f"cosine_{name}"] = h.summary([cosine(g, r) for g, r in zip(grads, ref)])
            row[f"norm_ratio_{name}"] = h.summary(
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

    for s in args.es_samples[:1]:  # a perturbed optimizer at ES's smallest budget
        gen = torch.Generator().manual_seed(seed + 3 * s)
        stateless(f"Perturbed S={s}", Bypass(box.fn, Perturbed(sigma=SIGMA, samples=s, generator=gen)),
                  s, s + 1)  # fmt: skip

    curves = []
    curve_steps = set(np.unique(np.geomspace(1, max(windows) + k, 30).round().astype(int)) - 1)

    def trained(name: str, est: Estimator, samples: int, at: list[int], curve: bool) -> None:
        """Train ``est`` along the trajectory; record it in the windows ``at``."""
        layer, line = Bypass(box.fn, est), {"step": []}
        grads, times, fit = {}, {}, {}
        for t in range(max(at) + k):
            g, sec = gradient(layer, xs[t], vs[t])
            stats = est.stats if isinstance(est, Reporter) else None
            grads[t], times[t] = g, sec
            fit[t] = float("nan") if stats is None else stats.agreement_before
            if curve and t in curve_steps:
                line["step"].append(t + 1)
                for ref_name, ref in refs(t).items():
                    line.setdefault(f"cosine_{ref_name}", []).append(cosine(g, ref))
            if not any(w <= t < w + k for w in at):
                del grads[t]
        evals = round(layer.blackbox.instances / (max(at) + k), 2)
        for w in at:
            steps = range(w, w + k)
            record(f"{name} @{w}", samples, evals, steps, [grads[t] for t in steps],
                   [times[t] for t in steps],
                   {"trained_steps": w, "fit_agreement_before": h.summary([fit[t] for t in steps]),
                    "fit_metric": None if stats is None else stats.metric})  # fmt: skip
        if curve:
            curves.append({"box": box.name, "d": d, "estimator": name, "samples": samples, **line})

    def surrogate(s: int, offset: int, replay: bool = False) -> Surrogate:
        torch.manual_seed(seed + 7 * s + offset)  # the surrogate's initial weights
        buffer = ReplayBuffer(200, radius=3 * SIGMA * math.sqrt(d)) if replay else None
        return Surrogate(box.model(), sigma=SIGMA, samples=s, fit_steps=args.fit_steps,  # type: ignore[misc]
                         fit_loss=box.fit_loss, lr=args.lr, replay=buffer,  # type: ignore[arg-type]
                         generator=torch.Generator().manual_seed(seed + 11 * s + offset))  # fmt: skip

    for s in args.surrogate_samples or box.surrogate_samples:
        trained(f"Surrogate S={s}", surrogate(s, 0), s, windows, curve=True)
    main_only = [main]  # the combinations: at the main window, at the smallest budget
    gen = torch.Generator().manual_seed(seed + 5)
    if box.replay:
        trained("Surrogate S=10 + replay", surrogate(10, 0, replay=True), 10, main_only, False)
    trained("GuidedES paper S=4+6", GuidedES(surrogate(4, 1), sigma=SIGMA, samples=6,
            variant="paper", generator=gen), 10, main_only, False)  # fmt: skip
    probe = ES(sigma=SIGMA, samples=2, generator=gen)
    trained("Gated S=8, probe 2x2/4", Gated(surrogate(8, 2), probe=probe, every=4, hysteresis=0.0), 10,
            main_only, False)  # fmt: skip
    return rows, curves


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "d in 16, 256 only, fewer steps and repeats (about a minute)")
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
    args = p.parse_args(argv)
    stem = "estimators_quick" if args.quick else "estimators"
    if args.replot:
        plot(h.read_result(args.out / f"{stem}.json"), args.out, stem)
        return
    if args.quick:
        args.dims = [d for d in args.dims if d <= 256]
        args.warmup_steps, args.checkpoints, args.repeats = 100, [300], 5
        args.check_pairs = 20_000
    torch.set_num_threads(args.threads)
    start, load = time.perf_counter(), h.Load()
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
    data = {
        "benchmark": "estimators",
        "title": "Bypass vs ES: cosine to the reference gradient and time per gradient",
        "method": h.method_text(__doc__),
        "machine": h.machine_info(load_average_start_end=str(load)),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "sigma": SIGMA, "rho": RHO, "batch": 1,
        "reference_check": checks,
        "table": table(results, args.dims),
        "figures": figures(args.warmup_steps),  # not "plots": docs/benchmarks.md places the figures itself
        "results": results,
        "curves": curves,
        "runtime_s": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    h.write_result(args.out / f"{stem}.json", data)  # prints the table
    plot(data, args.out, stem)
    print(f"wrote {args.out / (stem + '.json')} in {data['runtime_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
