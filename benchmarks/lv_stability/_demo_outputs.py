"""The demo augmentation sweep's outputs: the tables (mean test Dice per row and augmentation;
the falls), the JSON and the figure (test Dice per augmentation; EDPCNN's validation curves)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H
from benchmarks import _lv_runs

#: The table's rows: label, the method of the run, the record's test Dice field (the demo's
#: rows: the U-Net+DP row is the unet run scored through the DP).
ROWS = (("EDPCNN", "edpcnn", "test_dice"), ("U-Net", "unet", "test_dice"),
        ("U-Net+DP", "unet", "test_dice_dp"))  # fmt: skip
#: The per-run fields of the JSON's ``"runs"`` (the curves are under ``"curves"``).
PER_RUN = ("key", "method", "preset", "seed", "test_dice", "test_dice_dp", "best_dice",
           "best_iteration", "at_rim_last", "n_val", "fell", "seconds", "evaluate_seconds",
           "threads", "load_average_start", "load_average_end")  # fmt: skip


def means(records: list[dict[str, Any]], presets: list[str]) -> dict[str, dict[str, Any]]:
    """Per row and augmentation: ``{"mean", "seeds", "values"}`` of the test Dice over the
    records (seeds sorted), ``None`` where no run is done."""
    out: dict[str, dict[str, Any]] = {}
    for label, method, field in ROWS:
        out[label] = {}
        for preset in presets:
            runs = sorted((r for r in records if (r["method"], r["preset"]) == (method, preset)),
                          key=lambda r: r["seed"])  # fmt: skip
            values = [r[field] for r in runs]
            out[label][preset] = None if not runs else {
                "mean": float(np.mean(values)), "seeds": [r["seed"] for r in runs],
                "values": values}  # fmt: skip
    return out


def table(records: list[dict[str, Any]], presets: list[str]) -> dict[str, Any]:
    """Rows EDPCNN, U-Net, U-Net+DP; a column per augmentation; cells ``mean (v0 / v1 / ...)``,
    the seeds' test Dice in seed order (``–``: no run done)."""
    rows = [[label, *(_cell(by[p]) for p in presets)]
            for label, by in means(records, presets).items()]  # fmt: skip
    return {"columns": ["row", *presets], "rows": rows}


def _cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "–"
    return f"{cell['mean']:.3f} (" + " / ".join(f"{v:.3f}" for v in cell["values"]) + ")"


def falls(records: list[dict[str, Any]], methods: list[str],
          presets: list[str]) -> dict[str, Any]:  # fmt: skip
    """Per trained method and augmentation: ``fallen / runs`` (``–`` for a method validated
    without the DP, whose runs have no rim count), with the fallen seeds."""
    rows = []
    for method in methods:
        row: list[str] = [method]
        for preset in presets:
            runs = [r for r in records if (r["method"], r["preset"]) == (method, preset)]
            if not runs or any(r["fell"] is None for r in runs):
                row.append("–")
                continue
            seeds = sorted(r["seed"] for r in runs if r["fell"])
            row.append(f"{len(seeds)} / {len(runs)}" + (f" (seeds {seeds})" if seeds else ""))
        rows.append(row)
    return {"columns": ["method", *presets], "rows": rows}


def write(path: Path, records: list[dict[str, Any]], planned: int, config: dict[str, Any],
          doc: str | None, load: H.Load) -> None:  # fmt: skip
    """The JSON (tables, per-run rows, curves, method, machine) at ``path`` and its figure."""
    presets, methods = config["presets"], config["methods"]
    where = ", --quick" if config["quick"] else ""
    data = {"title": f"Augmentation on the demo data: test Dice over seeds{where}",
            "table": table(records, presets), "means": means(records, presets),
            "falls": falls(records, methods, presets),
            "complete": len(records) == planned, "runs_done": len(records),
            "runs_planned": planned,
            "augment_ranges": {r["preset"]: r["augment_ranges"] for r in records},
            "config": config, "method": H.method_text(doc),
            "machine": _lv_runs.machine(load, records),
            **_lv_runs.commits_of(records, _lv_runs.lvseg_commit()),
            "runs": [{k: r.get(k) for k in PER_RUN} for r in records],
            "curves": {r["key"]: r["validations"] for r in records}}  # fmt: skip
    H.write_result(path, data)
    print(H.format_table(data["falls"]), file=sys.stderr)
    plot(data, path.with_suffix(".png"))


def plot(data: dict[str, Any], path: Path) -> None:
    """Left: test Dice per augmentation, one colour per row (the seeds as dots, the mean as a
    bar). Right: EDPCNN's validation curves, one colour per augmentation, fallen runs dashed."""
    plt = H.pyplot()
    presets = data["config"]["presets"]
    colours = dict(zip(presets, ("tab:grey", "tab:blue", "tab:green", "tab:orange", "tab:purple",
                                 "tab:brown")))  # fmt: skip
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(ROWS)
    for k, (label, by) in enumerate(data["means"].items()):
        xs = np.arange(len(presets)) + (k - (len(ROWS) - 1) / 2) * width
        for x, preset in zip(xs, presets):
            cell = by[preset]
            if cell is None:
                continue
            left.bar(x, cell["mean"], width * 0.9, color=f"C{k}", alpha=0.35,
                     label=label if preset == presets[0] else None)  # fmt: skip
            left.plot([x] * len(cell["values"]), cell["values"], ".", color=f"C{k}", ms=5)
    left.set_xticks(np.arange(len(presets)), presets)
    left.set_ylabel("test Dice (mean over test slices)")
    left.set_title("test Dice: mean over seeds (bar), each seed (dot)", fontsize=9)
    left.set_ylim(0, 1.1)
    left.legend(fontsize=8, loc="upper center", ncol=len(ROWS))
    left.grid(alpha=0.3, axis="y")
    labelled: set[str] = set()  # one legend entry per augmentation
    for run in (r for r in data["runs"] if r["method"] == "edpcnn"):
        xs, ys = zip(*data["curves"][run["key"]])
        right.plot(xs, ys, color=colours.get(run["preset"], "black"), marker=".", ms=3,
                   linewidth=1.0, linestyle="--" if run["fell"] else "-",
                   label=None if run["preset"] in labelled else run["preset"])  # fmt: skip
        labelled.add(run["preset"])
    right.set_xlabel("iteration")
    right.set_ylabel("validation Dice")
    right.set_title("EDPCNN validation curves, one line per seed (dashed: fell to the rim)",
                    fontsize=9)
    right.grid(alpha=0.3)
    right.legend(fontsize=7, loc="lower left", framealpha=0.6)
    fig.suptitle(data["title"], fontsize=9)
    H.save(fig, path)
