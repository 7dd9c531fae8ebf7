"""The outputs of ``acdc_ablation``: the tables side by side with the thesis, the figures, the
result files, from the records of the finished runs (the plan is :mod:`._study`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as h
from benchmarks import _lv_runs as lv
from benchmarks.acdc_ablation import _issue20
from benchmarks.acdc_ablation._cells import dice_cell, runs, scores, seconds_method, seconds_table
from benchmarks.acdc_ablation._study import EVALUATED, LABELS, ROWS, THESIS, Plan, jobs_of


def table(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Table 5.1 side by side with the thesis: mean ± s.d. over seeds (runs) per size."""
    got = runs(records)
    rows = []
    for row in ROWS:
        cells: list[Any] = [LABELS[row]]
        for size in plan.sizes:
            thesis = THESIS.get(row, {}).get(size)
            cells.append(dice_cell(got.get((row, size), []))
                         + (f" [{thesis:.4f}]" if thesis is not None else ""))
        rows.append(cells)
    cols = ["method"] + [f"{s} images" for s in plan.sizes]
    return {"columns": cols, "rows": rows}


def _jitter_label(rec: dict[str, Any]) -> str:
    if rec["variant"].startswith("jitter-delta"):
        return f"edpcnn (delta {rec['delta']})"
    return f"{rec['variant']} (delta {rec.get('delta', 1)})"


def ceiling_table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The DP on the true mask at each pooling: what the star representation allows."""
    rows = [[f"pool {p}", v] for r in records if r["variant"] == "ceilings"
            for p, v in r["ceilings"].items()]  # fmt: skip
    return {"columns": ["DP input", "validation Dice with the true mask"], "rows": rows}


def jitter_table(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    cols = ["model (DP delta at test)", "training images", "seed"] + [
        f"jitter {j:g}" for j in plan.jitters]
    rows = [[_jitter_label(r), r["size"], r["seed"]] + [round(v, 4) for v in r["jitter_dice"].values()]
            for r in records if "jitter_dice" in r]  # fmt: skip
    return {"columns": cols, "rows": sorted(rows)}


def plot(records: list[dict[str, Any]], plan: Plan, path: Path) -> None:
    """Table 5.1 (Dice vs size, thesis dashed), Fig. 5.4 (jitter), Fig. 5.5 (curves at 10)."""
    plt = h.pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    got = scores(records)
    for k, row in enumerate(ROWS):
        sizes = [s for s in plan.sizes if (row, s) in got]
        if sizes:
            means = [np.mean(got[(row, s)]) for s in sizes]
            sds = [np.std(got[(row, s)], ddof=1) if len(got[(row, s)]) > 1 else 0 for s in sizes]
            ax[0].errorbar(sizes, means, yerr=sds, marker="o", capsize=3, color=f"C{k}",
                           label=LABELS[row])  # fmt: skip
        if row in THESIS:
            ax[0].plot(list(THESIS[row]), list(THESIS[row].values()), "--", color=f"C{k}",
                       alpha=0.6, label=f"{LABELS[row]}, thesis")  # fmt: skip
    ax[0].set(xscale="log", xlabel="training images", ylabel="validation Dice (372 images)",
              title="Table 5.1 (dashed: thesis)", ylim=(0.3, 1.0))  # fmt: skip
    for rec in (r for r in records if "jitter_dice" in r):
        ax[1].plot(plan.jitters, list(rec["jitter_dice"].values()), marker="o",
                   label=f"{_jitter_label(rec)}, {rec['size']} images, seed {rec['seed']}")
    ax[1].set(xlabel="test centre jitter (fraction of the object radius)",
              ylabel="validation Dice", title="Fig. 5.4: jittered star centre")
    small = min(plan.sizes)
    for k, rec in enumerate(r for r in records if r["size"] == small and r["seed"] == 0
                            and r["variant"] in ("unet", "edpcnn")):  # fmt: skip
        its = [c["iteration"] for c in rec["curve"]]
        name = EVALUATED[rec["variant"]][0]
        ax[2].plot(its, [c["train"] for c in rec["curve"]], "--", color=f"C{k}",
                   label=f"{LABELS[rec['variant']]}: train")
        ax[2].plot(its, [c["val"][name] for c in rec["curve"]], "-", color=f"C{k}",
                   label=f"{LABELS[rec['variant']]}: validation")
    ax[2].set(xlabel="iteration", ylabel="Dice", title=f"Fig. 5.5: {small} training images")
    for a in ax:
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    h.save(fig, path)


def write(records: list[dict[str, Any]], plan: Plan, out: Path, stem: str, now: dict[str, Any],
          load: h.Load, doc: str | None, defaults: dict[str, Any]) -> None:  # fmt: skip
    """The result JSONs (the study; its seconds per run, jitter, ceilings and issue #20
    tables) and the PNG, from the finished runs."""
    done = {r["key"] for r in records}
    data = {
        "benchmark": "acdc_ablation",
        "title": "Reproducing the thesis on ACDC (validation Dice, 372 images)",
        "method": h.method_text(doc),
        "machine": lv.machine(load, records),
        "lvseg_commit": lv.commits_of(records, now),
        "config": {"plan": {k: ({str(s): x for s, x in v.items()} if isinstance(v, dict) else v)
                            for k, v in dataclasses.asdict(plan).items()},
                   "train_config_defaults": defaults},
        "complete": all(j.key in done for j in jobs_of(plan)),
        "runs_done": len(done), "runs_planned": len(jobs_of(plan)),
        "table": table(records, plan),
        "seconds_table": seconds_table(records, plan),
        "issue20_table": _issue20.table(records, plan),
        "jitter_table": jitter_table(records, plan),
        "ceiling_table": ceiling_table(records),
        "runs": records,
    }  # fmt: skip
    h.write_result(out / f"{stem}.json", data, echo=False)
    h.write_result(out / f"{stem}_jitter.json", {
        "benchmark": "acdc_ablation", "title": "Fig. 5.4: EDPCNN with the test centre jittered",
        "method": "Validation Dice (372 images) of the best edpcnn checkpoint with every test "
                  "star centre jittered inside the LV: s.d. = jitter x object radius "
                  "(lvseg jitter_centers, generator seed 1234). The rest of the method is in "
                  "acdc_ablation.json.",
        "machine": data["machine"], "table": data.pop("jitter_table"),
    }, echo=False)  # fmt: skip
    h.write_result(out / f"{stem}_ceilings.json", {
        "benchmark": "acdc_ablation", "title": "The star's resolution: the DP on the true masks",
        "method": "Validation Dice (372 images) of the star DP (lvseg's edpcnn-es star: N = 25, "
                  "M = 65, delta 1, nearest warp) on the true masks minus 1/2, its input "
                  "averaged over blocks of F points along each line and linearly interpolated "
                  "back (StarConfig.pool = F, ES-lo's representation). The rest of the method "
                  "is in acdc_ablation.json.",
        "machine": data["machine"], "table": data["ceiling_table"],
    }, echo=False)  # fmt: skip
    done20, planned20 = _issue20.progress(records, plan)
    h.write_result(out / f"{stem}_seconds.json", {
        "benchmark": "acdc_ablation", "title": "Seconds per training run (median, runs; load)",
        "method": "The rows and runs of the Dice table in acdc_ablation.json. "
                  + seconds_method(records),
        "machine": data["machine"], "table": data["seconds_table"],
    }, echo=False)  # fmt: skip
    h.write_result(out / f"{stem}_issue20.json", {
        "benchmark": "acdc_ablation",
        "title": "Issue #20: Dice mean ± s.d. (runs); median seconds per run",
        "method": _issue20.method(records, plan, seconds_method(_issue20.own(records))),
        "machine": data["machine"],
        "complete": done20 == planned20, "runs_done": done20, "runs_planned": planned20,
        "table": data["issue20_table"],
    }, echo=False)  # fmt: skip
    plot(records, plan, out / f"{stem}.png")
