"""The study's outputs: the table (mean ± s.d. over seeds), the JSON and the figure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks.bypass_vs_es._curves import AXES, at_budgets, best_curve, curve, total

NAMES = {"edpcnn": "bypass (edpcnn)", "edpcnn-es": "ES (edpcnn-es)"}
#: The comparison's rows: label, then the :func:`at_budgets` key of the bypass and of ES.
ROWS = (("own default run", "bypass_own", "es_own"),
        ("within the bypass's step seconds", "bypass_own", "es_at_bypass_seconds"),
        ("within ES's step seconds", "bypass_at_es_seconds", "es_own"),
        ("within the bypass's DP evaluations", "bypass_own", "es_at_bypass_evaluations"),
        ("within ES's DP evaluations", "bypass_at_es_evaluations", "es_own"),
        ("within the bypass's step CPU seconds", "bypass_own", "es_at_bypass_cpu_seconds"),
        ("within ES's step CPU seconds", "bypass_at_es_cpu_seconds", "es_own"))  # fmt: skip


def mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± s.d. (n)`` (sample s.d.; ``–`` for one value); NaNs are left out and counted."""
    ok = [v for v in values if not math.isnan(v)]
    if not ok:
        return f"none reached ({len(values)})"
    sd = f"{np.std(ok, ddof=1):.{digits}f}" if len(ok) > 1 else "–"
    missed = f", {len(values) - len(ok)} reached none" if len(ok) < len(values) else ""
    return f"{np.mean(ok):.{digits}f} ± {sd} ({len(ok)}{missed})"


def pairs(records: list[dict[str, Any]],
          main: set[str]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:  # fmt: skip
    """The runs keyed in ``main`` by seed: ``(bypass, ES)`` for every seed that has both."""
    by = {(r["method"], r["seed"]): r for r in records if r["key"] in main}
    return {s: (by[("edpcnn", s)], by[("edpcnn-es", s)]) for _, s in sorted(by)
            if ("edpcnn", s) in by and ("edpcnn-es", s) in by}


def per_image(record: dict[str, Any]) -> list[float]:
    """The distinct DP evaluations per image of a run's iterations (counted by ``_child.py``),
    per image of each step's batch as counted there; runs recorded before ``_child.py`` counted
    the images divide by the batch size (the ACDC runs: 10 training images, batch size 10, so
    every batch holds all 10)."""
    images = record.get("images", [record["batch_size"]] * len(record["fn_items"]))
    return sorted({n / k for n, k in zip(record["fn_items"], images)})


def to_best(record: dict[str, Any]) -> float:
    """The training-step seconds at the run's best validation (the first, on ties)."""
    points = curve(record, "seconds")
    return max(points, key=lambda p: (p[1], -p[0]))[0]


def table(records: list[dict[str, Any]], main: set[str]) -> dict[str, Any]:
    """The comparison of the runs keyed in ``main`` (the default runs; not the longer ones)."""
    seeds = pairs(records, main)
    cmp = [at_budgets(b, e) for b, e in seeds.values()]
    rows = [[label, mean_sd([c[kb] for c in cmp]), mean_sd([c[ke] for c in cmp])]
            for label, kb, ke in ROWS]
    runs = {m: [p[i] for p in seeds.values()] for i, m in enumerate(NAMES)}
    stat = lambda f, d=1: [mean_sd([f(r) for r in runs[m]], d) for m in NAMES]  # noqa: E731
    rows += [["iterations", *stat(lambda r: r["iterations"], 0)],
             ["training-step seconds per run", *stat(lambda r: total(r, "seconds"))],
             ["training-step seconds to the run's best validation", *stat(to_best)],
             ["seconds per step, median over steps", *stat(lambda r: float(np.median(
                 r["step_seconds"])), 3)],
             ["step CPU seconds per run", *stat(lambda r: total(r, "cpu_seconds"))],
             ["CPU seconds per step, median over steps", *stat(lambda r: float(np.median(
                 r["step_cpu_seconds"])), 3)],
             ["DP evaluations per run", *stat(lambda r: total(r, "evaluations"), 0)],
             ["DP evaluations per image and iteration (counted)",
              *[", ".join(f"{v:g}" for v in sorted({x for r in runs[m] for x in per_image(r)}))
                for m in NAMES]],
             ["1-min load average, start / end of each run",
              *["; ".join(f"{r['load_average_start']:.1f}/{r['load_average_end']:.1f}"
                          for r in runs[m]) for m in NAMES]]]  # fmt: skip
    return {"columns": ["best validation Dice, mean ± s.d. (seeds)", *NAMES.values()],
            "rows": rows, "seeds": list(seeds), "per_seed": dict(zip(map(str, seeds), cmp))}


def counts_agree(records: list[dict[str, Any]]) -> bool:
    """Whether the wrapper's count equals diffbypass's ``BlackBox.instances`` at every step."""
    return all(r["fn_items"] == r["fn_library"] for r in records)


def write(path: Path, records: list[dict[str, Any]], main: set[str], planned: int,
          config: dict[str, Any], doc: str | None, load: H.Load) -> None:  # fmt: skip
    """The JSON (table, method, machine, runs) at ``path`` and its figure beside it; the table
    compares the runs keyed in ``main``."""
    t = table(records, main)
    where = "ACDC, 10 images" if "acdc" in config["data"] else "phantoms, --quick"
    data = {"title": "bypass against ES at their defaults: equal step seconds, equal DP "
                     f"evaluations ({where})",
            "table": {"columns": t["columns"], "rows": t["rows"]}, "per_seed": t["per_seed"],
            "complete": len(records) == planned, "runs_done": len(records),
            "runs_planned": planned, "config": config,
            "counts_agree_with_blackbox_instances": counts_agree(records),
            "method": H.method_text(doc), "machine": _lv_runs.machine(load, records),
            **_lv_runs.commits_of(records, _lv_runs.lvseg_commit()),
            "runs": [{k: r[k] for k in ("key", "method", "seed", "iterations", "batch_size",
                                        "images", "validations", "wall_seconds", "fit_seconds",
                                        "load_average_start", "load_average_end") if k in r}
                     | {k: r[k] for k in AXES.values()}
                     for r in records]}  # fmt: skip
    H.write_result(path, data)
    plot(data, path.with_suffix(".png"))


def plot(data: dict[str, Any], path: Path) -> None:
    """Best validation Dice so far against step seconds and against DP evaluations (log scale):
    one line per run (colour: method, line style: seed), each validation as a dot."""
    plt = H.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    colours = {"edpcnn": "tab:blue", "edpcnn-es": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for ax, axis in zip(axes, ("seconds", "evaluations")):
        for r in data["runs"]:
            points = curve(r, axis)
            xs, best = zip(*best_curve(points))
            kw = {"color": colours[r["method"]], "linestyle": styles[r["seed"] % len(styles)]}
            ax.plot(xs, best, drawstyle="steps-post", linewidth=1.3,
                    label=f"{NAMES[r['method']]}, seed {r['seed']}", **kw)
            ax.scatter(xs, [d for _, d in points], s=8, color=kw["color"], alpha=0.5)
        ax.set_xlabel("training-step seconds" if axis == "seconds"
                      else "DP (fn) evaluations in training steps (log scale)")
        ax.set_xscale("linear" if axis == "seconds" else "log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation Dice (line: best so far)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(data["title"], fontsize=9)
    H.save(fig, path)
