"""The four figures of the ``estimators`` study, drawn from the contents of ``estimators.json``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks import _harness as h
from benchmarks._boxes import BOXES


def figures(warmup: int) -> list[dict[str, str]]:
    return [
        {"file": "estimators.png", "caption": "Median cosine (IQR bars) to the sigma-smoothed "
         f"gradient against d; the surrogate after {warmup} training steps."},
        {"file": "estimators_time.png", "caption": "Median wall time per gradient (IQR bars, one "
         "thread) against d."},
        {"file": "estimators_budget.png", "caption": "Median cosine against fn evaluations per "
         "gradient; dotted: sqrt((S/2)/(S/2+d+1)), antithetic ES on a linear function."},
        {"file": "estimators_training.png", "caption": "The surrogate's cosine at single steps "
         "along the training trajectory: it is a moving target, not a fixed estimator."},
    ]  # fmt: skip


def plot(data: dict, out: Path, stem: str = "estimators") -> None:
    """Draw the four PNGs ``<stem>.png``, ``<stem>_time.png``, ``<stem>_budget.png``, ``<stem>_training.png``."""
    plt = h.pyplot()
    from matplotlib.ticker import NullFormatter

    results, curves, dims = data["results"], data["curves"], data["config"]["dims"]
    warmup = data["config"]["warmup_steps"]
    main = [r for r in results if r.get("trained_steps", warmup) == warmup]
    names = list(dict.fromkeys(r["estimator"] for r in main))
    colors = dict(zip(names, plt.cm.tab20.colors))
    # one idea per figure: the cosine (estimators.png), then the time (estimators_time.png)
    for key, file in (("cosine_smoothed", f"{stem}.png"), ("time_s", f"{stem}_time.png")):
        fig, axes = plt.subplots(1, len(BOXES), figsize=(4.3 * len(BOXES), 4.2), squeeze=False)
        for j, box in enumerate(BOXES):
            ax = axes[0, j]
            for est in names:
                sel = sorted((r for r in main if r["box"] == box and r["estimator"] == est),
                             key=lambda r: r["d"])  # fmt: skip
                if not sel:
                    continue
                ds = [r["d"] for r in sel]
                h.errorbar(ax, ds, [r[key] for r in sel], color=colors[est], label=est,
                           scale=1e3 if key == "time_s" else 1.0)  # fmt: skip
                if key == "cosine_smoothed" and "cosine_true" in sel[0]:
                    ax.plot(ds, [r["cosine_true"]["median"] for r in sel], ls=":", marker="x",
                            color=colors[est])  # fmt: skip
            if key == "cosine_smoothed":
                extra = "\n(dotted, x: cosine to the true gradient)" if box == "smooth" else ""
                ax.set_title(f"{box}: cosine to the smoothed gradient{extra}", fontsize=9)
                ax.set_ylim(-0.1, 1.02)
                ax.set_ylabel("cosine (median, IQR)")
            else:
                ax.set_title(f"{box}: wall time per gradient (1 thread)", fontsize=9)
                ax.set_yscale("log")
                ax.set_ylabel("ms (median, IQR)")
            ax.set_xscale("log")
            ax.set_xticks(dims, [str(d) for d in dims])
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("input dimension d")
            ax.grid(alpha=0.3, which="both")
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center",
                   ncol=min(len(names), 6), fontsize=8)  # fmt: skip
        what = "cosine" if key == "cosine_smoothed" else "wall time"
        fig.suptitle(f"Estimators' {what} against input dimension (sigma={data['sigma']}, B=1, "
                     f"surrogate after {warmup} training steps)", fontsize=11)  # fmt: skip
        h.save(fig, out / file, dpi=100, rect=(0, 0.12, 1, 1))

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
    h.save(fig, out / f"{stem}_budget.png", dpi=100, rect=(0, 0, 0.86, 1))

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
    h.save(fig, out / f"{stem}_training.png", dpi=100)
