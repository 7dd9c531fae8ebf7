"""Decision-focused learning on PyEPO's 5x5 shortest path: diffbypass estimators against PyEPO.

Writes ``benchmarks/shortest_path/results/shortest_path.json`` (a ``"table"``, the ``"method"``, ``"machine"``,
the configuration, the LP check and every run), ``shortest_path.png`` and the resumable run log
``shortest_path.jsonl`` (one line per finished training run).

Method
------
Normalised regret (mean ± sd over seeds) on the test split; linear model, Adam, hyperparameters
chosen on the validation split of the first seed per degree; exact grid-DAG DP solver for every
method (checked against PyEPO's Gurobi LP). A linear model maps 5 features to the 40 edge costs
of a 5x5 grid (PyEPO's genData, noise 0.5, polynomial degree 1/2/4/6; 1000 training, 200
validation and 1000 test instances; seeds 0, 1, 2); a shortest-path solver turns costs into a
path. Every diffbypass estimator and PyEPO's 2-stage, SPO+, PFYL, DPO and DBB train in the same
run for 10 epochs (batch 32), on the same data and solver; the methods and their hyperparameter
grids are the table of _methods.py. Solver calls are counted per training instance
and epoch; seconds per epoch are the median over epochs (torch single-threaded).

Run ``python -m benchmarks.shortest_path`` (about 30-40 minutes on 2 shared cores; resumable,
``--replot`` rebuilds the JSON and PNG from the run log) or ``--quick`` (degree 1, 1 seed,
100/50/100 instances, 1 epoch, the first grid point; written as ``shortest_path_quick.*``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks import _harness as h
from benchmarks.shortest_path._grid import GRID, SOLVES, shortest_paths
from benchmarks.shortest_path._methods import METHODS, check_against_lp

import pyepo  # noqa: E402  (pip install pyepo gurobipy: the `bench` extra)

FEATURES, NOISE = 5, 0.5


@dataclass
class Config:
    """Options of the benchmark; the CLI is generated from these fields (and the harness's
    ``--quick``/``--out``)."""

    degrees: list[int] = field(default_factory=lambda: [1, 2, 4, 6], metadata={"help": "polynomial degrees of genData"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "data/initialisation seeds"})
    n_train: int = field(default=1000, metadata={"help": "training instances"})
    n_val: int = field(default=200, metadata={"help": "validation instances (hyperparameter choice)"})
    n_test: int = field(default=1000, metadata={"help": "test instances (reported regret)"})
    epochs: int = field(default=10, metadata={"help": "training epochs"})
    batch: int = field(default=32, metadata={"help": "mini-batch size"})
    methods: list[str] = field(default_factory=list, metadata={"help": "subset of methods (default: all)"})
    out: str = "benchmarks/shortest_path/results"
    quick: bool = False


# --------------------------------------------------------------------------- one run
def regret(model: nn.Module, x: torch.Tensor, c: np.ndarray, z: np.ndarray) -> float:
    with torch.no_grad():
        sol = shortest_paths(model(x).double().numpy(), count=False)
    return float(((sol * c).sum(1) - z).sum() / np.abs(z).sum())


def data(deg: int, seed: int, cfg: Config) -> dict[str, Any]:
    n = cfg.n_train + cfg.n_val + cfg.n_test
    x, c = pyepo.data.shortestpath.genData(n, FEATURES, GRID, deg=deg, noise_width=NOISE, seed=seed)
    w = shortest_paths(c, count=False)
    z = (w * c).sum(1)
    cut = np.cumsum([0, cfg.n_train, cfg.n_val, cfg.n_test])
    return {k: (torch.from_numpy(x[a:b]).float(), c[a:b], w[a:b], z[a:b])
            for k, a, b in zip(["train", "val", "test"], cut[:-1], cut[1:])}  # fmt: skip


def run(method: str, hp: dict, d: dict, seed: int, cfg: Config) -> dict[str, Any]:
    torch.manual_seed(seed)
    model = nn.Linear(FEATURES, 40)
    x, c, w, _ = d["train"]
    start, SOLVES[0] = SOLVES[0], 0
    build = METHODS[method][1]
    if build is None:  # 2-stage: least squares on the costs, closed form, no solver call
        t = time.perf_counter()
        sol = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], 1), torch.from_numpy(c).float()).solution
        with torch.no_grad():
            model.weight.copy_(sol[:-1].T)
            model.bias.copy_(sol[-1])
        epoch_s = [time.perf_counter() - t]
    else:
        loss_fn = build(hp, seed)
        opt = torch.optim.Adam(model.parameters(), lr=hp["lr"])
        ct, wt = torch.from_numpy(c).float(), torch.from_numpy(w).float()
        order, epoch_s = torch.Generator().manual_seed(seed), []
        for _ in range(cfg.epochs):
            t = time.perf_counter()
            for idx in torch.randperm(len(x), generator=order).split(cfg.batch):
                loss = loss_fn(model(x[idx]), ct[idx], wt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            epoch_s.append(time.perf_counter() - t)
    calls = SOLVES[0] / (len(x) * max(len(epoch_s), 1) if build is not None else len(x))
    SOLVES[0] += start
    return {"val": regret(model, *[d["val"][i] for i in (0, 1, 3)]),
            "test": regret(model, *[d["test"][i] for i in (0, 1, 3)]),
            "calls_per_instance": calls, "s_per_epoch": float(np.median(epoch_s))}  # fmt: skip


def grid(method: str, quick: bool) -> list[dict]:
    space = METHODS[method][2]
    points = [dict(zip(space, v)) for v in itertools.product(*space.values())]
    return points[: 1 if quick else None]


# --------------------------------------------------------------------------- main
def config(argv: list[str] | None) -> tuple[Config, bool]:
    """The configuration from the command line (one option per field) and ``--replot``."""
    p = h.parser(__doc__, "smoke run: deg 1, 1 seed, 100/50/100 instances, 1 epoch, first grid point",
                 replot=False)  # fmt: skip
    p.add_argument("--replot", action="store_true", help="rebuild the JSON/PNG from the JSONL only")
    for f in dataclasses.fields(Config):
        if "help" in f.metadata:
            many = f.type.startswith("list")
            p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, help=f.metadata["help"],
                           nargs="+" if many else None, type=int if "int" in f.type else str)  # fmt: skip
    args = vars(p.parse_args(argv))
    replot = args.pop("replot")
    args["out"] = os.path.relpath(args["out"], h.REPO)  # recorded relative to the repository
    cfg = Config(**{k: v for k, v in args.items() if v is not None})
    if cfg.quick:
        cfg = dataclasses.replace(cfg, degrees=cfg.degrees[:1], seeds=cfg.seeds[:1], n_train=100,
                                  n_val=50, n_test=100, epochs=1)  # fmt: skip
    return cfg, replot


def main(argv: list[str] | None = None) -> None:
    cfg, replot = config(argv)
    torch.set_num_threads(1)
    out = Path(cfg.out)
    stem = "shortest_path_quick" if cfg.quick else "shortest_path"
    log = h.raw_log(out, stem)
    key = lambda r: json.dumps([r["phase"], r["method"], r["deg"], r["seed"], r["hp"]])  # noqa: E731
    try:
        lp_gap = check_against_lp(data(cfg.degrees[-1], cfg.seeds[0], cfg)["test"][1][: 20 if cfg.quick else 200])
    except ImportError:  # gurobipy absent: the DP is still exact, just unchecked
        lp_gap = float("nan")
    print(f"DP vs PyEPO's Gurobi LP: largest objective gap {lp_gap:.2e}")

    def finished(rec: dict, d: dict, seed: int) -> dict:
        """The record of this run, after running it if the log does not have it yet."""
        if key(rec) not in log.done:
            log.add({"key": key(rec), **rec, **run(rec["method"], rec["hp"], d, seed, cfg)})
        return next(r for r in reversed(log.records) if r["key"] == key(rec))

    for deg in ([] if replot else cfg.degrees):
        for seed in cfg.seeds:
            d = data(deg, seed, cfg)
            for m in cfg.methods or list(METHODS):
                # tuning on the validation split of seed cfg.seeds[0]; then every seed at the choice
                points = grid(m, cfg.quick)
                if seed == cfg.seeds[0] and len(points) > 1:
                    for hp in points:
                        finished({"phase": "tune", "method": m, "deg": deg, "seed": seed, "hp": hp}, d, seed)
                tuned = [r for r in log.records if r["phase"] == "tune" and r["method"] == m and r["deg"] == deg]
                hp = min(tuned, key=lambda r: r["val"])["hp"] if tuned else points[0]
                rec = finished({"phase": "final", "method": m, "deg": deg, "seed": seed, "hp": hp}, d, seed)
                print(f"deg {deg} seed {seed} {m:22s} test regret {rec['test']:.4f} "
                      f"calls/inst {rec['calls_per_instance']:.1f} {rec['s_per_epoch']:.2f}s/epoch", flush=True)  # fmt: skip
    summarise(log.records, cfg, out / f"{stem}.json", lp_gap)


def summarise(done: list[dict], cfg: Config, path: Path, lp_gap: float | None) -> None:
    final = [r for r in done if r["phase"] == "final"]
    methods = list(dict.fromkeys(r["method"] for r in final))
    degrees = sorted({r["deg"] for r in final})
    cell = lambda m, d, k: [r[k] for r in final if r["method"] == m and r["deg"] == d]  # noqa: E731
    rows = []
    for m in methods:
        regs = [cell(m, d, "test") for d in degrees]
        rows.append([m, METHODS[m][0]] + [f"{np.mean(v):.3f} ± {np.std(v):.3f}" if v else "–" for v in regs]
                    + [f"{np.mean([x for d in degrees for x in cell(m, d, 'calls_per_instance')]):.1f}",
                       f"{np.median([x for d in degrees for x in cell(m, d, 's_per_epoch')]):.2f}"])  # fmt: skip
    result = {
        "table": {"columns": ["method", "library"] + [f"regret deg {d}" for d in degrees]
                  + ["solver calls / instance / epoch", "s / epoch"], "rows": rows},
        "method": h.method_text(__doc__), "machine": h.machine_info(),
        "config": dataclasses.asdict(cfg), "lp_gap": lp_gap, "runs": done,
    }  # fmt: skip
    h.write_result(path, result)
    plot(final, methods, degrees, path.with_suffix(".png"))


def plot(final: list[dict], methods: list[str], degrees: list[int], path: Path) -> None:
    plt = h.pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, m in enumerate(methods):
        vals = [[r["test"] for r in final if r["method"] == m and r["deg"] == d] for d in degrees]
        mean = [np.mean(v) if v else np.nan for v in vals]
        err = [np.std(v) if v else 0 for v in vals]
        style = "-" if METHODS[m][0] == "diffbypass" else "--"
        ax.errorbar(np.array(degrees) + 0.03 * (i - len(methods) / 2), mean, yerr=err, ls=style,
                    marker="o", ms=3, label=m, color=plt.cm.tab20(i % 20))  # fmt: skip
    ax.set(xlabel="polynomial degree", ylabel="normalised regret (test)", xticks=degrees,
           title="5x5 shortest path, linear model (solid: diffbypass, dashed: PyEPO)")  # fmt: skip
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    h.save(fig, path, dpi=120)


if __name__ == "__main__":
    main()
