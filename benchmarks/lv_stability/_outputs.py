"""The study's outputs: the table (mean ± s.d. over seeds per size and variant), the JSON and
the figure (validation Dice against iteration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks.lv_stability._runs import VARIANTS
from benchmarks.lv_stability._summary import mean_sd

COLUMNS = ["training set", "variant", "best validation Dice", "late mean", "late min",
           "late s.d.", "largest drop", "median step seconds"]  # fmt: skip
#: The per-run statistic of each column after the first two (:func:`curve_summary` keys).
STATS = ("best_dice", "late_mean", "late_min", "late_sd", "largest_drop", "median_step_seconds")
#: The per-seed rows' fields.
PER_SEED = ("key", "size", "variant", "seed", "best_dice", "best_iteration", "late_n",
            "late_mean", "late_min", "late_sd", "largest_drop", "largest_drop_at",
            "median_step_seconds", "total_seconds", "adopted", "load_average_start",
            "load_average_end")  # fmt: skip


def groups(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The records by ``(size, variant)``, in the order of their first record, seeds sorted."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault((str(r["size"]), r["variant"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in out.items()}


def table(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per size and variant: mean ± s.d. over seeds of each of :data:`STATS`."""
    rows = [[size, variant, *(mean_sd([r[s] for r in runs]) for s in STATS)]
            for (size, variant), runs in groups(records).items()]  # fmt: skip
    return {"columns": COLUMNS, "rows": rows}


def write(path: Path, records: list[dict[str, Any]], planned: int, config: dict[str, Any],
          doc: str | None, load: H.Load) -> None:  # fmt: skip
    """The JSON (table, per-seed rows, curves, method, machine) at ``path`` and its figure."""
    where = "phantoms, --quick" if config["quick"] else "ACDC, thesis split"
    data = {"title": f"EDPCNN validation Dice over long runs, surrogate settings ({where})",
            "table": table(records),
            "per_seed": [{k: r.get(k) for k in PER_SEED} for r in records],
            "complete": len(records) == planned, "runs_done": len(records),
            "runs_planned": planned, "variants": {k: list(v) for k, v in VARIANTS.items()},
            "config": config, "method": H.method_text(doc),
            "machine": _lv_runs.machine(load, [r for r in records if not r["adopted"]]),
            **_lv_runs.commits_of([r for r in records if not r["adopted"]],
                                  _lv_runs.lvseg_commit()),
            "adopted_runs": sorted(r["key"] for r in records if r["adopted"]),
            "curves": {r["key"]: r["validations"] for r in records}}  # fmt: skip
    H.write_result(path, data)
    plot(data, path.with_suffix(".png"))


def plot(data: dict[str, Any], path: Path) -> None:
    """Validation Dice against iteration, one panel per training-set size, one line per run
    (colour: variant, line style: seed)."""
    plt = H.pyplot()
    runs = data["per_seed"]
    sizes = list(dict.fromkeys(str(r["size"]) for r in runs))
    fig, axes = plt.subplots(1, max(len(sizes), 1), figsize=(5.2 * max(len(sizes), 1), 3.8),
                             sharey=True, squeeze=False)  # fmt: skip
    colours = dict(zip(data["variants"], ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                          "tab:purple", "tab:brown")))  # fmt: skip
    styles = ["-", "--", ":", "-."]
    for ax, size in zip(axes[0], sizes):
        for r in (r for r in runs if str(r["size"]) == size):
            xs, ys = zip(*data["curves"][r["key"]])
            ax.plot(xs, ys, color=colours.get(r["variant"], "black"), marker=".", ms=3,
                    linestyle=styles[r["seed"] % len(styles)], linewidth=1.1,
                    label=f"{r['variant']}, seed {r['seed']}")  # fmt: skip
        ax.set_title(f"training set: {size}" + (" slices" if size != "all" else ""), fontsize=9)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best", framealpha=0.6)  # the least hidden curve
    axes[0][0].set_ylabel("validation Dice")
    fig.suptitle(data["title"], fontsize=9)
    H.save(fig, path)
