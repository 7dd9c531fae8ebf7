"""Decision-focused learning on PyEPO's 5x5 shortest path: diffbypass estimators against PyEPO.

A linear model maps 5 features to the 40 edge costs of a 5x5 grid; a shortest-path solver turns
costs into a path; the score is the normalised regret on 1000 test instances. Every diffbypass
estimator and PyEPO's 2-stage, SPO+, PFYL, DPO and DBB train in the same run, on the same data,
with the same solver, and hyperparameters chosen on a validation split only (see
benchmarks/README.md, "shortest_path"). Resumable: one JSONL line per finished run.

    python benchmarks/shortest_path.py            # full run (~30-40 min on 2 shared cores)
    python benchmarks/shortest_path.py --quick    # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import diffbypass as db  # noqa: E402
from _grid import ARCS, GRID, SOLVES, SoftDP, shortest_paths  # noqa: E402
from _harness import machine_info  # noqa: E402

import pyepo  # noqa: E402  (pip install pyepo gurobipy: the `bench` extra)
import pyepo.func.utils as pyepo_utils  # noqa: E402
from pyepo.model.opt import optModel  # noqa: E402

FEATURES, NOISE = 5, 0.5


@dataclass
class Config:
    """Options of the benchmark; the CLI is generated from these fields."""

    degrees: list[int] = field(default_factory=lambda: [1, 2, 4, 6], metadata={"help": "polynomial degrees of genData"})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "data/initialisation seeds"})
    n_train: int = field(default=1000, metadata={"help": "training instances"})
    n_val: int = field(default=200, metadata={"help": "validation instances (hyperparameter choice)"})
    n_test: int = field(default=1000, metadata={"help": "test instances (reported regret)"})
    epochs: int = field(default=10, metadata={"help": "training epochs"})
    batch: int = field(default=32, metadata={"help": "mini-batch size"})
    methods: list[str] = field(default_factory=list, metadata={"help": "subset of methods (default: all)"})
    out: str = field(default="benchmarks/results", metadata={"help": "output folder"})
    quick: bool = field(default=False, metadata={"help": "smoke run: deg 1, 1 seed, 100/50/100 instances, 1 epoch, first grid point"})


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


def pyepo_build(kind: str) -> Callable:
    def build(hp: dict, seed: int) -> Callable:
        torch.manual_seed(seed)
        m = GridDP()
        if kind == "spo+":
            f = pyepo.func.SPOPlus(m)
            return lambda cp, c, w: f(cp, c, w, (w * c).sum(1, keepdim=True))
        if kind == "pfyl":
            f = pyepo.func.perturbedFenchelYoung(m, n_samples=10, sigma=hp["sigma"], seed=seed)
            return lambda cp, c, w: f(cp, w)
        f = (pyepo.func.perturbedOpt(m, n_samples=10, sigma=hp["sigma"], seed=seed) if kind == "dpo"
             else pyepo.func.blackboxOpt(m, lambd=hp["lam"]))  # fmt: skip
        return lambda cp, c, w: decision(f(cp), c)
    return build


LR = [0.01, 0.05]
SIG = [0.5, 1.0]
#: name -> (library, builder(hp, seed) -> loss(pred_cost, cost, sol), hyperparameter grid)
METHODS: dict[str, tuple[str, Callable | None, dict[str, list]]] = {
    "2-stage": ("PyEPO", None, {}),
    "SPO+": ("PyEPO", pyepo_build("spo+"), {"lr": LR}),
    "PFYL": ("PyEPO", pyepo_build("pfyl"), {"lr": LR, "sigma": SIG}),
    "DPO": ("PyEPO", pyepo_build("dpo"), {"lr": LR, "sigma": SIG}),
    "DBB (PyEPO)": ("PyEPO", pyepo_build("dbb"), {"lr": LR, "lam": [5.0, 20.0]}),
    "ES S=8": ("diffbypass", bypass(lambda hp, s: db.ES(sigma=hp["sigma"], samples=8, generator=g(s))), {"lr": LR, "sigma": SIG}),
    "ES S=16": ("diffbypass", bypass(lambda hp, s: db.ES(sigma=hp["sigma"], samples=16, generator=g(s))), {"lr": LR, "sigma": [1.0]}),
    "Perturbed": ("diffbypass", bypass(lambda hp, s: db.Perturbed(sigma=hp["sigma"], samples=8, sense="min", generator=g(s))), {"lr": LR, "sigma": SIG}),
    "FenchelYoungLoss": ("diffbypass", fy_build, {"lr": LR, "sigma": SIG}),
    "DBB": ("diffbypass", bypass(lambda hp, s: db.DBB(lam=hp["lam"])), {"lr": LR, "lam": [5.0, 20.0]}),
    "StraightThrough(-1)": ("diffbypass", bypass(lambda hp, s: db.StraightThrough(scale=-1)), {"lr": LR}),
    "Surrogate (MLP)": ("diffbypass", bypass(lambda hp, s: surrogate(hp, s, 8, False)), {"lr": LR, "sigma": [1.0], "fit_lr": [1e-3, 1e-2]}),
    "Surrogate (soft DP)": ("diffbypass", bypass(lambda hp, s: surrogate(hp, s, 8)), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "GuidedES (unbiased)": ("diffbypass", bypass(lambda hp, s: db.GuidedES(surrogate(hp, s, 2), sigma=hp["sigma"], samples=6, generator=g(s))), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "GuidedES (paper)": ("diffbypass", bypass(lambda hp, s: db.GuidedES(surrogate(hp, s, 2), sigma=hp["sigma"], samples=6, variant="paper", generator=g(s))), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
    "Gated": ("diffbypass", bypass(lambda hp, s: db.Gated(surrogate(hp, s, 4), probe=db.ES(sigma=hp["sigma"], samples=2, generator=g(s)), every=4)), {"lr": LR, "sigma": SIG, "fit_lr": [1e-2]}),
}  # fmt: skip


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
    if method == "2-stage":  # least squares on the costs: closed form, no solver call
        t = time.perf_counter()
        sol = torch.linalg.lstsq(torch.cat([x, torch.ones(len(x), 1)], 1), torch.from_numpy(c).float()).solution
        with torch.no_grad():
            model.weight.copy_(sol[:-1].T)
            model.bias.copy_(sol[-1])
        epoch_s = [time.perf_counter() - t]
    else:
        loss_fn = METHODS[method][1](hp, seed)
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
    calls = SOLVES[0] / (len(x) * max(len(epoch_s), 1) if method != "2-stage" else len(x))
    SOLVES[0] += start
    return {"val": regret(model, *[d["val"][i] for i in (0, 1, 3)]),
            "test": regret(model, *[d["test"][i] for i in (0, 1, 3)]),
            "calls_per_instance": calls, "s_per_epoch": float(np.median(epoch_s))}  # fmt: skip


def grid(method: str, quick: bool) -> list[dict]:
    space = METHODS[method][2]
    points = [dict(zip(space, v)) for v in itertools.product(*space.values())]
    return points[: 1 if quick else None]


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(Config):
        kw: dict[str, Any] = {"help": f.metadata["help"]}
        if f.type == "bool":
            kw["action"] = "store_true"
        elif f.type.startswith("list"):
            kw.update(nargs="+", type=int if "int" in f.type else str)
        else:
            kw["type"] = int if f.type == "int" else str
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, **kw)
    p.add_argument("--replot", action="store_true", help="redraw the JSON/PNG from the JSONL only")
    args = p.parse_args(argv)
    cfg = Config(**{k: v for k, v in vars(args).items() if k != "replot" and v is not None})
    if cfg.quick:
        cfg = dataclasses.replace(cfg, degrees=cfg.degrees[:1], seeds=cfg.seeds[:1], n_train=100, n_val=50, n_test=100, epochs=1)
    torch.set_num_threads(1)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "shortest_path_quick" if cfg.quick else "shortest_path"
    jsonl = out / f"{stem}.jsonl"
    done = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    key = lambda r: json.dumps([r["phase"], r["method"], r["deg"], r["seed"], r["hp"]])  # noqa: E731
    finished = {key(r) for r in done}
    methods = cfg.methods or list(METHODS)
    try:
        lp_gap = check_against_lp(data(cfg.degrees[-1], cfg.seeds[0], cfg)["test"][1][: 20 if cfg.quick else 200])
    except ImportError:  # gurobipy absent: the DP is still exact, just unchecked
        lp_gap = float("nan")
    print(f"DP vs PyEPO's Gurobi LP: largest objective gap {lp_gap:.2e}")
    for deg in ([] if args.replot else cfg.degrees):
        for seed in cfg.seeds:
            d = data(deg, seed, cfg)
            for m in methods:
                # tuning on the validation split of seed cfg.seeds[0]; then every seed at the choice
                points = grid(m, cfg.quick)
                if seed == cfg.seeds[0] and len(points) > 1:
                    for hp in points:
                        rec = {"phase": "tune", "method": m, "deg": deg, "seed": seed, "hp": hp}
                        if key(rec) not in finished:
                            rec.update(run(m, hp, d, seed, cfg))
                            done.append(rec), finished.add(key(rec))
                            with jsonl.open("a") as fh:
                                fh.write(json.dumps(rec) + "\n")
                tuned = [r for r in done if r["phase"] == "tune" and r["method"] == m and r["deg"] == deg]
                hp = min(tuned, key=lambda r: r["val"])["hp"] if tuned else points[0]
                rec = {"phase": "final", "method": m, "deg": deg, "seed": seed, "hp": hp}
                if key(rec) not in finished:
                    rec.update(run(m, hp, d, seed, cfg))
                    done.append(rec), finished.add(key(rec))
                    with jsonl.open("a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                    print(f"deg {deg} seed {seed} {m:22s} test regret {rec['test']:.4f} "
                          f"calls/inst {rec['calls_per_instance']:.1f} {rec['s_per_epoch']:.2f}s/epoch", flush=True)  # fmt: skip
    summarise(done, cfg, out / f"{stem}.json", lp_gap)


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
        "method": ("Normalised regret (mean ± sd over seeds) on the test split; linear model, Adam, "
                   "hyperparameters chosen on the validation split of the first seed per degree; "
                   "exact grid-DAG DP solver for every method (checked against PyEPO's Gurobi LP)."),
        "machine": machine_info(), "config": dataclasses.asdict(cfg), "lp_gap": lp_gap,
        "runs": done,
    }  # fmt: skip
    path.write_text(json.dumps(result, indent=1))
    plot(final, methods, degrees, path.with_suffix(".png"))
    print("\n".join(" | ".join(map(str, r)) for r in [result["table"]["columns"]] + rows))


def plot(final: list[dict], methods: list[str], degrees: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, m in enumerate(methods):
        vals = [[r["test"] for r in final if r["method"] == m and r["deg"] == d] for d in degrees]
        mean = [np.mean(v) if v else np.nan for v in vals]
        err = [np.std(v) if v else 0 for v in vals]
        style = "-" if METHODS[m][0] == "diffbypass" else "--"
        ax.errorbar(np.array(degrees) + 0.03 * (i - len(methods) / 2), mean, yerr=err, ls=style, marker="o", ms=3, label=m, color=plt.cm.tab20(i % 20))
    ax.set(xlabel="polynomial degree", ylabel="normalised regret (test)", xticks=degrees,
           title="5x5 shortest path, linear model (solid: diffbypass, dashed: PyEPO)")  # fmt: skip
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
