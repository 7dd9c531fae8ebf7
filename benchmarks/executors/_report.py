"""Table and figure of ``executors.py``, from the contents of ``executors.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks import _harness as h

KINDS = ("threads", "processes", "dask processes", "dask threads")


def table(data: dict[str, Any]) -> dict[str, Any]:
    cols = ["box", "estimator", "executor", "workers", "evaluations / s", "speed-up",
            "predicted speed-up", "step ms (median)", "IQR ms", "per-task overhead ms"]
    rows = []
    for r in data["results"]:
        s = r["step_s"]
        rows.append([r["box"], r["estimator"], r["kind"], r["workers"], round(r["evals_per_s"], 1),
                     f"{r['speedup']:.2f}x", f"{r['predicted_speedup']:.2f}x",
                     round(1e3 * s["median"], 1), f"{1e3 * s['q25']:.0f}-{1e3 * s['q75']:.0f}",
                     round(1e3 * data["task_overhead_s"][r["executor"]]["median"], 3)])
    return {"columns": cols, "rows": rows}


def plot(data: dict[str, Any], path: Path) -> None:
    plt = h.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    res = [r for r in data["results"] if r["estimator"] == "ES"]
    ax = axes[0]
    for i, kind in enumerate(KINDS):
        for box, ls in (("program", "-"), ("sleep", "--")):
            sel = sorted((r for r in res if r["kind"] == kind and r["box"] == box),
                         key=lambda r: r["workers"])  # fmt: skip
            ax.plot([r["workers"] for r in sel], [r["speedup"] for r in sel], ls=ls, marker="o",
                    color=f"C{i}", label=f"{kind}, {box}")  # fmt: skip
            if box == "sleep":
                ax.plot([r["workers"] for r in sel], [r["predicted_speedup"] for r in sel],
                        ls="", marker="x", color=f"C{i}")  # fmt: skip
    ws = sorted({r["workers"] for r in res})
    ax.plot(ws, ws, color="grey", lw=0.8, ls=":", label="ideal (w)")
    ax.plot(ws, [min(w, data["law"]["cores"]) for w in ws], color="k", lw=0.8, ls=":",
            label="min(w, cores)")
    ax.set(xlabel="workers w", ylabel="speed-up over serial (ES step)", xticks=ws,
           title="Speed-up: program (solid), sleep (dashed; x: the law)")
    ax.legend(fontsize=7)
    ax = axes[1]
    names = list(data["task_overhead_s"])[1:]
    ax.bar(range(len(names)), [1e3 * data["task_overhead_s"][n]["median"] for n in names],
           color=[f"C{KINDS.index(n.rsplit(' x', 1)[0])}" for n in names])
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set(yscale="log", ylabel="ms per no-op task", title="Per-task overhead of the executor")
    ax = axes[2]
    for i, name in enumerate(dict.fromkeys(r["executor"] for r in data["max_batch_sweep"])):
        sel = [r for r in data["max_batch_sweep"] if r["executor"] == name]
        ms = [r["max_batch"] for r in sel]
        ax.plot(ms, [r["evals_per_s"] for r in sel], marker="o", color=f"C{i + 4}", label=name)
        ax.plot(ms, [r["evals_per_step"] / r["predicted_step_s"] for r in sel], ls=":",
                color=f"C{i + 4}")
    ax.set(xscale="log", xlabel="max_batch (evaluations per task)", ylabel="evaluations / s",
           title="Program box, ES: chunk size (dotted: the law)")
    ax.legend(fontsize=7)
    fig.suptitle(f"{data['machine']['cpu_count']} cores, load {data['machine']['load_average_start_end']}",
                 fontsize=9)
    h.save(fig, path)
