"""The plan of ``lv_ablation.py`` (its jobs) and its outputs (summary table, figure, method).

Nothing here needs ``lvseg``: ``lv_ablation.py`` trains and evaluates, this module says what to
run and summarises the records of the finished runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h

METHODS = ("unet", "unet-dp", "edpcnn", "edpcnn-es")
DATASETS = ("sunnybrook", "synthetic")
TRAINED = {"unet": ("unet", "unet-dp"), "edpcnn": ("edpcnn",), "edpcnn-es": ("edpcnn-es",)}


@dataclass(frozen=True)
class Plan:
    """What to run: sizes, folds/seeds and iterations per dataset."""

    sunnybrook_folds: tuple[int, ...]
    sunnybrook_sizes: tuple[int | str, ...]
    sunnybrook_iterations: dict[int | str, int]
    synthetic_seeds: dict[int, tuple[int, ...]]  # size -> seeds
    synthetic_iterations: dict[int, int]
    synthetic_pool: int
    synthetic_test: int


# Measured before the run (--measure, 1 thread, shared machine): about 0.3-0.5 s per U-Net or
# EDPCNN-ES iteration and 1.1-1.5 s per EDPCNN iteration at batch 10 (about half at batch 5).
# 60 iterations x 20 trained configurations x 3 methods: about 40 minutes.
FULL = Plan(
    sunnybrook_folds=(0, 1, 2),
    sunnybrook_sizes=(5, 10, 20, "all"),
    sunnybrook_iterations={5: 60, 10: 60, 20: 60, "all": 60},
    synthetic_seeds={10: (0, 1), 30: (0, 1), 100: (0, 1), 300: (0,), 1000: (0,)},
    synthetic_iterations={10: 60, 30: 60, 100: 60, 300: 60, 1000: 60},
    synthetic_pool=1000,
    synthetic_test=200,
)
QUICK = Plan(
    sunnybrook_folds=(0,),
    sunnybrook_sizes=(5, 10),
    sunnybrook_iterations={5: 3, 10: 3},
    synthetic_seeds={10: (0,), 30: (0,)},
    synthetic_iterations={10: 3, 30: 3},
    synthetic_pool=30,
    synthetic_test=24,
)


@dataclass
class Job:
    """One training run and the evaluations made from it."""

    dataset: str
    split: str  # "fold0" (test patient 0) or "seed0"
    seed: int
    size: int | str
    method: str  # trained method
    iterations: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.split}/n={self.size}/{self.method}/it={self.iterations}"


def jobs_of(plan: Plan) -> list[Job]:
    """All runs: Sunnybrook, then the phantoms' first seed, then their further seeds."""
    jobs = []
    for size in plan.sunnybrook_sizes:
        for fold in plan.sunnybrook_folds:
            for method in TRAINED:
                jobs.append(Job("sunnybrook", f"fold{fold}", fold, size, method,
                                plan.sunnybrook_iterations[size]))  # fmt: skip
    extra = []  # further seeds after the first seed of every size (the budget may cut them)
    for size, seeds in plan.synthetic_seeds.items():
        for seed in seeds:
            for method in TRAINED:
                job = Job("synthetic", f"seed{seed}", seed, size, method,
                          plan.synthetic_iterations[size])
                (jobs if seed == seeds[0] else extra).append(job)
    return jobs + extra


# ---------------------------------------------------------------------------- outputs
def aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, size, method): mean and s.d. over runs of the run's mean Dice."""
    groups: dict[tuple[str, str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for rec in records:
        for method, ev in rec["evaluations"].items():
            groups.setdefault((rec["dataset"], str(rec["size"]), method), []).append((rec, ev))
    rows = []
    for (dataset, size, method), items in groups.items():
        dice = np.array([ev["dice"] for _, ev in items])
        n_train = sorted({rec["n_train"] for rec, _ in items})
        rows.append({
            "dataset": dataset, "size": size, "method": method,
            "n_train": n_train, "x": float(np.mean(n_train)),
            "dice_mean": float(dice.mean()),
            "dice_sd": float(dice.std(ddof=1)) if len(dice) > 1 else None,
            "runs": len(dice), "per_run": [round(float(d), 4) for d in dice],
            "n_test": sum(ev["n_test"] for _, ev in items),
            "iterations": sorted({rec["iterations"] for rec, _ in items}),
        })  # fmt: skip
    order = {m: i for i, m in enumerate(METHODS)}
    rows.sort(key=lambda r: (DATASETS.index(r["dataset"]), r["x"], order[r["method"]]))
    return rows


def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cols = ["dataset", "training images", "method", "Dice mean", "Dice s.d. over runs", "runs",
            "per-run Dice", "iterations"]  # fmt: skip
    out = []
    for r in rows:
        label = r["size"] if r["size"] != "all" else f"all ({'/'.join(map(str, r['n_train']))})"
        out.append([
            r["dataset"], label, r["method"], round(r["dice_mean"], 4),
            None if r["dice_sd"] is None else round(r["dice_sd"], 4), r["runs"],
            ", ".join(f"{d:.3f}" for d in r["per_run"]),
            "/".join(map(str, r["iterations"])),
        ])  # fmt: skip
    return {"columns": cols, "rows": out}


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = h.pyplot()
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False)
    styles = {"unet": ("C0", "o"), "unet-dp": ("C1", "s"), "edpcnn": ("C3", "D"),
              "edpcnn-es": ("C2", "^")}  # fmt: skip
    for ax, dataset in zip(axes[0], datasets):
        sizes = sorted({r["x"] for r in rows if r["dataset"] == dataset})
        for k, method in enumerate(METHODS):
            sel = sorted((r for r in rows if r["dataset"] == dataset and r["method"] == method),
                         key=lambda r: r["x"])  # fmt: skip
            if not sel:
                continue
            shift = 1.0 + 0.03 * (k - 1.5)  # spread the points a little (log x axis)
            x = np.array([r["x"] for r in sel]) * shift
            y = np.array([r["dice_mean"] for r in sel])
            err = np.array([r["dice_sd"] or 0.0 for r in sel])
            color, marker = styles[method]
            ax.errorbar(x, y, yerr=err, color=color, marker=marker, capsize=3, label=method)
            for xi, r in zip(x, sel):  # the individual runs
                ax.scatter([xi] * len(r["per_run"]), r["per_run"], color=color, s=8, alpha=0.35)
        ticks = []
        for x in sizes:
            r = next(r for r in rows if r["dataset"] == dataset and r["x"] == x)
            pool = "/".join(map(str, r["n_train"]))
            label = f"{x:g}" if r["size"] != "all" else f"all\n({pool})"
            ticks.append(f"{label}\nruns={r['runs']}")
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(sizes)
        ax.set_xticklabels(ticks, fontsize=8)
        pool = " (largest: the whole pool)" if dataset == "sunnybrook" else ""
        ax.set_xlabel("training images" + pool)
        ax.set_ylabel("test Dice (mean over runs)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        what = "patient folds" if dataset == "sunnybrook" else "seeds"
        ax.set_title(f"{dataset}: mean ± s.d. over {what} (dots: single runs)", fontsize=10)
        ax.legend(loc="best", fontsize=8)
    h.save(fig, path)


METHOD_TEXT = (
    "Test Dice of the last model (no checkpoint selection) against the number of training "
    "images, for unet, unet-dp (the trained unet with the star DP at inference), edpcnn "
    "(surrogate bypass) and edpcnn-es (ES), all with the lvseg TrainConfig defaults of the "
    "recorded commit except the number of iterations, which is the same for every method at a "
    "given size and far below the thesis' 20000 (50-minute CPU budget; see 'iterations').\n\n"
    "Sunnybrook (bundled sample, 3 patients): patient-level folds; each patient is the test set "
    "once, the training pool is the other two patients; sizes 5, 10, 20 and all of the pool "
    "are telescopic prefixes of one shuffle per fold. Synthetic phantoms: training pool of 1000 "
    "(phantom seed 1), fixed test set of 200 other phantoms (seed 2); telescopic sizes 10 to "
    "1000.\n\n"
    "Dice is computed inside the star's square with the star at the LV centre of mass "
    "(lvseg evaluate protocol); a run's score is its mean over the test slices; the table gives "
    "the mean and sample s.d. over runs (folds or seeds) and the per-run values. Seeds: fold or "
    "seed k uses seed k for initialisation, batches, centre jitter, surrogate noise and the "
    "subset shuffle. torch single-threaded on a shared 2-core CPU; the load average is in "
    "'machine'."
)


def write_outputs(records: list[dict[str, Any]], out: Path, stem: str, plan: Plan,
                  meta: dict[str, Any]) -> None:  # fmt: skip
    rows = aggregate(records)
    data = {
        "benchmark": "lv_ablation",
        "title": "LV segmentation: test Dice against training-set size (CPU-sized runs)",
        "method": METHOD_TEXT,
        "machine": meta["machine"],
        "lvseg_commit": meta["lvseg_commit"],
        "config": {
            "plan": {k: ({str(s): v for s, v in val.items()} if isinstance(val, dict) else val)
                     for k, val in plan.__dict__.items()},
            "torch_threads": meta["threads"], "train_config_defaults": meta["defaults"],
        },  # fmt: skip
        "runtime_s": meta.get("runtime_s"),
        "complete": meta.get("complete", False),
        "table": table(rows),
        "summary": rows,
        "runs": records,
    }
    h.write_result(out / f"{stem}.json", data)
    plot(rows, out / f"{stem}.png")
