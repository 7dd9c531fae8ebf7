"""The single-input path of ``Bypass`` before and after several-argument support (issue #18).

Writes ``benchmarks/single_input/results/single_input.json`` (a ``"table"``, the ``"method"``,
``"machine"``, every round's raw timings and load average, and whether the gradients were
bit-identical) and ``single_input.png`` (the ratio new / old per case, one dot per round).

Method
------
Two trees of the project: the *old* one, ``git archive`` of the last commit of main before the
first #18 merge (``--base``, default :data:`BASE`; only ``diffbypass/`` and ``plugins/stardp/``
are exported, to a temporary folder), and the *new* one, this checkout. A case is an estimator
(Surrogate, ES, Perturbed, GuidedES, FiniteDifference, StraightThrough, DBB) on one input:
``elementwise``, rounding on a batch 8 x 16 (a black box so cheap that the library's own cost
dominates), and ``star``, the star DP on EDPCNN's warped maps 10 x 25 x 65 (the one-hot of its
contour, a real output of the input's shape, so that every estimator applies; the Surrogate case
is EDPCNN's own: ``StarDP()``'s indices, ``StarSurrogate(8)``, cross-entropy, 10 samples, 1 fit
step, the training loss through ``predict``). FiniteDifference runs on the elementwise input only
(on the star maps it would call the DP 3250 times per map). The configurations are in
``_child.py``; they use only the API both trees share and pass one tensor, so the new tree takes
its single-input path.

Each timing process (``_child.py``, a fresh interpreter with ``PYTHONPATH`` naming one tree; it
refuses to run if ``diffbypass`` or ``diffbypass_stardp`` comes from elsewhere) runs every case
in turn: a fresh seeded ``Bypass``, three recorded forward + backward steps and 2 more untimed
warm-up steps, then 5 repeats, each looping for at least 0.05 s and reporting the mean per step, in
wall time and in the process's CPU time. One thread everywhere (``torch.set_num_threads(1)``,
``OMP/MKL/NUMBA_NUM_THREADS=1``, ``OMP_WAIT_POLICY=PASSIVE``). A round runs one old and one new
process, alternating which goes first (old-new, new-old, ...), so that a change of the shared
machine's load hits both alike: ``--rounds`` rounds (6) after one untimed round. Reported per
case: the median over rounds of each tree's per-round median, and the ratio new / old of each
round's medians (median and interquartile range over rounds), of CPU time (the main figure: much
less moved by other programs than wall time) and of wall time.

Exactness: the three recorded steps of every case (the output and the input's gradient, same
seeds for model, noise and input) of the old and the new process of every round are compared with
``torch.equal`` and the dtype; ``identical`` is true only if all of them agree bit for bit.

Run ``python -m benchmarks.single_input`` from the repository root (about 13 minutes on a busy
2-core machine) or ``--quick`` (smaller inputs, 1 round, 2 repeats; about a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H

HERE = Path(__file__).resolve().parent
#: the last commit of main before the first merge of issue #18 (753ef2d, the DP's smoothness
#: penalty; f241497, several arguments, followed)
BASE = "89b4f37b777bff193bc30eab992c089c2f6a5070"
TREES = ("old", "new")
CLOCKS = ("cpu", "wall")


def export(rev: str, dest: Path) -> Path:
    """``diffbypass/`` and ``plugins/stardp/`` of commit ``rev`` under ``dest`` (git archive)."""
    archive = subprocess.run(["git", "-C", str(H.REPO), "archive", rev, "diffbypass",
                              "plugins/stardp"], capture_output=True)  # fmt: skip
    if archive.returncode:
        raise SystemExit(f"git archive {rev} failed: {archive.stderr.decode().strip()} "
                         "(a clone without that commit: pass --base-tree DIR)")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def child_env(tree: Path) -> dict[str, str]:
    """The environment of a timing process: only ``tree``'s packages, one thread."""
    paths = os.pathsep.join([str(tree), str(tree / "plugins" / "stardp")])
    return {**os.environ, **H.thread_env(), "PYTHONPATH": paths}


def timing(tree: Path, grads: Path, quick: bool) -> dict[str, Any]:
    """One timing process on ``tree``; its seeded steps are saved to ``grads``."""
    cmd = [sys.executable, str(HERE / "_child.py"), "--root", str(tree), "--grads", str(grads)]
    if quick:
        cmd += ["--quick", "--warmup", "0", "--repeats", "2", "--min-time", "0"]
    return H.run_json_child(cmd, env=child_env(tree))


def identical(old: Path, new: Path) -> dict[str, bool]:
    """Per case, whether every recorded tensor of two timing processes is bit-identical."""
    import torch

    a, b = torch.load(old, weights_only=True), torch.load(new, weights_only=True)
    return {k: k in b and len(a[k]) == len(b[k]) and all(
        u.dtype == v.dtype and torch.equal(u, v) for u, v in zip(a[k], b[k])) for k in a}


def measure(trees: dict[str, Path], rounds: int, warmup: int, quick: bool) -> list[dict[str, Any]]:
    """Interleaved rounds; per round and tree each case's median seconds, and the exactness."""
    out = []
    with tempfile.TemporaryDirectory(prefix="single_input_") as tmp:
        for r in range(warmup + rounds):
            load, order = H.Load(), TREES if r % 2 == 0 else TREES[::-1]
            runs = {t: timing(trees[t], Path(tmp) / f"{t}.pt", quick) for t in order}
            same = identical(Path(tmp) / "old.pt", Path(tmp) / "new.pt")
            if r < warmup:
                continue
            record: dict[str, Any] = {
                "load_average": str(load), "order": list(order), "identical": same,
                "torch_threads": {t: runs[t]["torch_threads"] for t in TREES}, "cases": {}}
            for case in runs["old"]["cases"]:
                record["cases"][case] = {
                    t: {c: float(np.median(runs[t]["cases"][case][c])) for c in CLOCKS}
                    for t in TREES}  # fmt: skip
                record["cases"][case]["raw"] = {t: runs[t]["cases"][case] for t in TREES}
            ratios = [v["new"]["cpu"] / v["old"]["cpu"] for v in record["cases"].values()]
            print(f"round {r - warmup + 1}/{rounds} (load {load}, {order[0]} first): CPU ratio "
                  f"new/old {min(ratios):.3f}-{max(ratios):.3f}, identical: {all(same.values())}",
                  file=sys.stderr, flush=True)
            out.append(record)
    return out


def ratios(rounds: list[dict[str, Any]], case: str, clock: str) -> list[float]:
    """The ratio new / old of ``case``'s ``clock`` in each round."""
    return [r["cases"][case]["new"][clock] / r["cases"][case]["old"][clock] for r in rounds]


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case: each tree's median over rounds, the ratio statistics, the exactness."""
    out = {}
    for case in rounds[0]["cases"]:
        out[case] = {
            **{f"{t}_{c}_ms": 1e3 * float(np.median([r["cases"][case][t][c] for r in rounds]))
               for t in TREES for c in CLOCKS},
            **{f"ratio_{c}": H.summary(ratios(rounds, case, c), 4) for c in CLOCKS},
            "identical": all(r["identical"].get(case, False) for r in rounds),
        }  # fmt: skip
    return out


def table(summary: dict[str, Any]) -> dict[str, Any]:
    iqr = lambda s: f"{s['median']:.3f} ({s['q25']:.3f}-{s['q75']:.3f})"  # noqa: E731
    rows = []
    for case, s in summary.items():
        estimator, input_ = case.split("/")
        rows.append([estimator, input_, round(s["old_cpu_ms"], 3), round(s["new_cpu_ms"], 3),
                     iqr(s["ratio_cpu"]), iqr(s["ratio_wall"]),
                     "yes" if s["identical"] else "NO"])  # fmt: skip
    return {"columns": ["estimator", "input", "old CPU ms", "new CPU ms",
                        "new / old CPU, median (IQR)", "new / old wall, median (IQR)",
                        "gradients bit-identical"], "rows": rows}  # fmt: skip


def plot(data: dict[str, Any], path: Path) -> None:
    """The ratio new / old per case: CPU time per round (dots), its median (bar), wall (x)."""
    plt = H.pyplot()
    cases = list(data["summary"])
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, case in enumerate(cases):
        cpu = ratios(data["rounds"], case, "cpu")
        ax.scatter([i] * len(cpu), cpu, color="tab:blue", s=12, zorder=3,
                   label="CPU time, one round" if i == 0 else None)
        ax.hlines(float(np.median(cpu)), i - 0.3, i + 0.3, color="black",
                  label="CPU time, median" if i == 0 else None)
        ax.scatter([i], [data["summary"][case]["ratio_wall"]["median"]], marker="x",
                   color="tab:orange", zorder=4, label="wall time, median" if i == 0 else None)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.axhline(1.05, color="tab:red", linestyle="--", linewidth=1, label="5 % slower")
    ax.set_xticks(range(len(cases)), [c.replace("/", "\n") for c in cases], fontsize=7,
                  rotation=45, ha="right")
    ax.set_ylabel("new / old, seconds per step")
    ax.set_title(f"Bypass single-input forward + backward, {data['config']['rounds']} rounds, "
                 f"1 thread, load {data['machine']['load_average']}", fontsize=8)
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.45))
    H.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = H.parser(__doc__, "smaller inputs, 1 round, 2 repeats", replot=True)
    p.add_argument("--base", default=BASE, help="the old commit (default: main before #18)")
    p.add_argument("--base-tree", type=Path, help="an old tree on disk instead of --base")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds")
    args = p.parse_args(argv)
    path = H.result_file(args.out, "single_input", args.quick)
    if H.replot(args.replot, path, plot):
        return
    rounds, warmup = (1, 0) if args.quick else (args.rounds, args.warmup)
    load = H.Load()
    with tempfile.TemporaryDirectory(prefix="single_input_base_") as tmp:
        old = args.base_tree.resolve() if args.base_tree else export(args.base, Path(tmp))
        per_round = measure({"old": old, "new": H.REPO}, rounds, warmup, args.quick)
    summary = summarise(per_round)
    base = "tree " + str(args.base_tree) if args.base_tree else args.base
    data = {
        "title": "Bypass, single input: new / old seconds per forward + backward, 1 thread",
        "table": table(summary), "method": H.method_text(__doc__),
        "machine": H.machine_info(load_average=str(load), commit=H.git_commit()[:12],
                                  dirty=bool(H.git_commit("status", "--porcelain"))),
        "config": {"base": base, "rounds": rounds, "warmup_rounds": warmup, "quick": args.quick},
        "summary": summary, "rounds": per_round,
    }  # fmt: skip
    H.write_result(path, data)
    plot(data, path.with_suffix(".png"))


if __name__ == "__main__":
    main()
