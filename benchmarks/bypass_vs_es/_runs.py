"""One ``lvseg train`` run in a fresh process, and its record.

A run folder ``<work>/<key>/`` holds the run directory of ``lvseg train`` (``run/``), the DP
counts of ``_child.py`` (``counts.json``), the record (``record.json``) and, last, the marker
``done``: a folder with ``done`` is finished, one without it is started again from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _harness as H
from benchmarks import _lv_runs
from benchmarks._lv_runs import child_env

#: The methods, in the order they run within a seed: the bypass, then ES.
METHODS = ("edpcnn", "edpcnn-es")


@dataclass(frozen=True)
class Run:
    """One planned run: ``method`` at ``seed``; ``iterations`` ``None`` is the method's default."""

    method: str
    seed: int
    iterations: int | None = None

    @property
    def key(self) -> str:
        """The run's name: its folder and its record's ``key``."""
        return f"{self.method}-s{self.seed}-k{self.iterations or 'default'}"


def command(run: Run, data: list[str], run_dir: Path) -> list[str]:
    """The ``lvseg train`` arguments of ``run`` (through ``_child.py``)."""
    extra = [] if run.iterations is None else ["--iterations", str(run.iterations)]
    return [sys.executable, "-m", "benchmarks.bypass_vs_es._child", "train", "--method",
            run.method, *data, "--seed", str(run.seed), *extra, "--no-progress",
            "--out", str(run_dir)]  # fmt: skip


def train(run: Run, data: list[str], folder: Path) -> dict[str, Any]:
    """Train ``run`` into ``folder`` (a fresh start if it is not ``done``); its record."""
    if (folder / "done").is_file():
        return json.loads((folder / "record.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**child_env(), "BYPASS_VS_ES_COUNTS": str(folder / "counts.json")}
    cmd = command(run, data, folder / "run")
    load, now, start = H.Load(), _lv_runs.lvseg_commit(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=H.REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"lvseg train --method {run.method} --seed {run.seed} failed "
                         f"(exit {proc.returncode}); its folder: {folder}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    record = {"key": run.key, "method": run.method, "seed": run.seed,
              "iterations": summary["iteration"], "command": " ".join(cmd[3:]),
              "wall_seconds": round(wall, 2), "fit_seconds": round(summary["seconds"], 2),
              "load_average_start": load.start, "load_average_end": os.getloadavg()[0],
              **read_run(folder), **_lv_runs.commit_record(now)}  # fmt: skip
    H.atomic_write(folder / "record.json", json.dumps(record) + "\n")
    H.atomic_write(folder / "done", "")
    return record



def read_run(folder: Path) -> dict[str, Any]:
    """Step seconds (wall and CPU), validations ``[iteration, dice]`` and DP counts per step of a
    run folder."""
    from lvseg.hooks import read_metrics

    events = read_metrics(folder / "run" / "metrics.jsonl")
    steps = [e for e in events if e["event"] == "step"]
    if [e["iteration"] for e in steps] != list(range(1, len(steps) + 1)):
        raise ValueError(f"{folder}/run/metrics.jsonl: the steps are not 1, 2, ...; "
                         "was the run resumed? delete the folder to train it again")
    counts = json.loads((folder / "counts.json").read_text())
    if len(counts["items"]) != len(steps):
        raise ValueError(f"{folder}/counts.json has {len(counts['items'])} steps, "
                         f"metrics.jsonl {len(steps)}")
    config = json.loads((folder / "run" / "config.json").read_text())
    return {"batch_size": config["batch_size"],
            "step_seconds": [round(e["seconds"], 5) for e in steps],
            "step_cpu_seconds": counts["cpu"],
            "validations": [[e["iteration"], round(e["dice"], 5)] for e in events
                            if e["event"] == "validation"],
            "fn_items": counts["items"], "fn_library": counts["library"],
            **({"images": counts["images"]} if "images" in counts else {})}  # fmt: skip
