"""The outputs of ``lv_pareto.py`` from its runs: the seed-by-seed comparison of two settings
and the figure (Dice against seconds per iteration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h


def paired_difference(records: list[dict[str, Any]], new: str, old: str) -> dict[str, Any]:
    """ACDC Dice of ``new`` minus ``old`` over the seeds both ran (same initialisation, batches
    and noise seeds): mean, standard error, 95 % t interval and the paired t-test's p-value."""
    from scipy import stats

    dice = {(r["variant"], r["seed"]): r["best_dice"] for r in records if r["dataset"] == "acdc"}
    seeds = sorted(s for v, s in dice if v == new and (old, s) in dice)
    if len(seeds) < 2:
        return {"seeds": seeds}
    d = np.array([dice[(new, s)] - dice[(old, s)] for s in seeds])
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    half = float(stats.t.ppf(0.975, len(d) - 1)) * se
    return {"new": new, "old": old, "seeds": seeds, "differences": np.round(d, 4).tolist(),
            "mean": round(float(d.mean()), 4), "se": round(se, 4),
            "ci95": [round(float(d.mean()) - half, 4), round(float(d.mean()) + half, 4)],
            "t_test_p": round(float(stats.ttest_rel(d, np.zeros_like(d)).pvalue), 3)}


def plot(data: dict[str, Any], path: Path) -> None:
    plt = h.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    unet = data["timing"]["step_s"]["unet"]["median"]
    panels = (("ACDC (50 training images, 100 it.)", 4, "best validation Dice (372 images)"),
              ("Sunnybrook sample (10 training images)", 7, "test Dice (patient SCD0000201)"))
    for ax, (d, col, ylabel) in zip(axes, panels):
        for row in data["table"]["rows"]:
            if row[col] is None:
                continue
            front = row[0] in data["pareto_front_acdc"]
            ax.errorbar(row[1], row[col], yerr=row[col + 1] or 0, marker="o" if front else "s",
                        capsize=3, label=row[0])
            ax.annotate(row[0], (row[1], row[col]), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.axvline(unet, color="grey", ls=":", lw=1)
        ax.axvline(1.3 * unet, color="grey", ls="--", lw=1)
        ax.set(xlabel="s per training iteration (1 thread; dotted U-Net, dashed 1.3x)",
               ylabel=f"{ylabel}, mean ± s.d. over seeds", title=d)
    h.save(fig, path)
