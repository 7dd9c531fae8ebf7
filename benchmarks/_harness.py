"""What every benchmark shares: timing, statistics, machine metadata, result files and plots.

A benchmark script keeps only its experiment and calls these helpers:

* timing: :func:`time_calls` (warm-up, then repeats that each loop for a minimum time) and
  :func:`time_interleaved` (several calls timed in turn);
* statistics: :func:`summary` (median, quartiles and the raw values, the README's convention);
* machine: :func:`machine_info` (platform, CPU, versions, threads) and :class:`Load` (the load
  average at the start and the end of a run);
* results: :func:`write_result` (the JSON the docs read, written atomically, and its table
  printed), :func:`atomic_write` and :class:`RunLog` (a JSONL file of finished runs that a
  restarted study reads to skip them), :func:`method_text` (the "Method" section of a docstring),
  :func:`parser` (the common ``--quick``/``--replot``/``--out`` options), :func:`results_of`,
  :func:`result_file` and :func:`raw_log` (where a study's results and raw run logs go),
  :func:`replot` (``--replot``: the PNG redrawn from the JSON);
* plots (:mod:`benchmarks._plots`, importable from here): :func:`pyplot` (matplotlib with the
  Agg backend), :func:`errorbar` (median with the interquartile range as bars), :func:`save` (one
  dpi and layout for every PNG);
* subprocesses: :func:`run_json_child` (run a measurement in a fresh process, read its JSON),
  :func:`git_commit`.

Only the standard library, NumPy and (lazily) matplotlib and torch are imported: no benchmark
needs ``lvseg`` through this module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._plots import errorbar, pyplot, save  # noqa: F401  (part of this module's API)

ROOT = Path(__file__).resolve().parent  # benchmarks/
REPO = ROOT.parent  # studies run as ``python -m benchmarks.<study>`` from here
NAME = re.compile(r"[a-z0-9_.-]+")  # the characters a result file name may use
#: The environment variables that set a child process's threads: OpenMP's and MKL's (torch's
#: intra-op pool) and numba's (the star DP's).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def results_of(script: str) -> Path:
    """A study's result folder: ``benchmarks/<study>/results/`` beside its ``__main__.py``."""
    return Path(script).resolve().parent / "results"


def result_file(out: Path, study: str, quick: bool) -> Path:
    """A study's result file: ``<out>/<study>.json``, or ``<study>_quick.json`` for a
    ``--quick`` run, so that a smoke run never overwrites the real result. Its figure is the
    same path with ``.png``; its raw logs and other files take the path's ``stem``."""
    return out / f"{study}{'_quick' if quick else ''}.json"


def replot(wanted: bool, path: Path, plot: Callable[[dict[str, Any], Path], Any]) -> bool:
    """``--replot``: if ``wanted``, redraw ``path``'s PNG with ``plot(data, png)`` from the JSON
    at ``path``, and return ``True`` (the study then stops); else ``False``, nothing done."""
    if wanted:
        plot(read_result(path), path.with_suffix(".png"))
    return wanted


def raw_log(out: Path, name: str) -> RunLog:
    """The resumable run log ``<out>/raw/<name>.jsonl`` (raw logs stay out of the reader's way).

    Raises:
        ValueError: ``name`` uses a character outside ``[a-z0-9_.-]``.
    """
    if not NAME.fullmatch(name):
        raise ValueError(f"a result name may use only [a-z0-9_.-]; got {name!r}: "
                         "record variants and seeds inside the records, not in the file name")
    return RunLog(out / "raw" / f"{name}.jsonl")


# ---------------------------------------------------------------------------- timing + statistics
def time_calls(
    call: Callable[[], Any], repeats: int, min_time: float = 0.0, warmup: int = 1
) -> list[float]:
    """Seconds per call, one value per repeat, after ``warmup`` untimed calls.

    Each repeat loops over calls until it has run for at least ``min_time`` seconds and reports
    the mean per call (``min_time = 0``: one call per repeat).
    """
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            call()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        out.append(elapsed / calls)
    return out


def time_interleaved(calls: dict[str, Callable[[], Any]], repeats: int,
                     warmup: int = 1) -> dict[str, list[float]]:  # fmt: skip
    """Seconds of each call, one call of each in turn per round, after ``warmup`` rounds: a
    change in the machine's load then hits all of them alike."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            if round_ >= warmup:
                out[name].append(time.perf_counter() - start)
    return out


def summary(values: Iterable[float], digits: int | None = None) -> dict[str, Any]:
    """Median, 25th and 75th percentile, count and the raw values (rounded to ``digits``)."""
    vals = [float(v) for v in values]
    q25, med, q75 = np.percentile(vals, [25, 50, 75])
    raw = [round(v, digits) for v in vals] if digits is not None else vals
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "n": len(vals),
            "values": raw}  # fmt: skip


# ---------------------------------------------------------------------------- machine
def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, CPU, core count, Python/torch/NumPy versions, torch threads, OMP wait policy."""
    import torch

    return {
        "platform": platform.platform(), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "numpy": np.__version__,
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), **extra,
    }  # fmt: skip


class Load:
    """The 1-minute load average at construction and now: ``str(Load())`` is ``"0.52 / 1.30"``."""

    def __init__(self) -> None:
        self.start = os.getloadavg()[0]

    def __str__(self) -> str:
        return f"{self.start:.2f} / {os.getloadavg()[0]:.2f}"


# ---------------------------------------------------------------------------- result files
def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class RunLog:
    """A resumable study's JSONL file: one line per finished run, each with a unique ``"key"``.

    A restarted study builds the log from the same path and skips every key in :attr:`done`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        if path.exists():
            text = path.read_text(encoding="utf-8")
            self.records = [json.loads(line) for line in text.splitlines() if line.strip()]

    @property
    def done(self) -> set[str]:
        return {r["key"] for r in self.records}

    def add(self, record: dict[str, Any]) -> None:
        """Append one finished run and rewrite the file atomically."""
        self.records.append(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in self.records))


def format_table(table: dict[str, Any]) -> str:
    """A ``{"columns", "rows"}`` table as aligned plain text (floats to 4 significant digits)."""
    cell = lambda v: "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = [list(map(str, table["columns"]))] + [[cell(v) for v in r] for r in table["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def write_result(path: Path, data: dict[str, Any], echo: bool = True) -> None:
    """Write a result file (``docs/benchmarks.md`` convention) atomically; print its table."""
    for key in ("table", "method"):
        if key not in data:
            raise ValueError(f"a result file needs a {key!r} entry (docs/benchmarks.md)")
    atomic_write(path, json.dumps(data, indent=1) + "\n")
    if echo:
        print(format_table(data["table"]), file=sys.stderr)
        print(f"wrote {path}", file=sys.stderr)


def read_result(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def method_text(doc: str | None) -> str:
    """The ``Method`` section of a benchmark's docstring (up to a closing ``Run ...`` paragraph),
    with reST literals written as Markdown code: the ``"method"`` text of its result file, which
    the docs render as Markdown."""
    body = (doc or "").split("Method\n------\n", 1)[1]
    return body.rsplit("\nRun ", 1)[0].strip().replace("``", "`")


def parser(doc: str | None, quick: str, replot: bool = True,
           out: Path | None = None) -> argparse.ArgumentParser:  # fmt: skip
    """An argument parser with the options every benchmark has: ``--quick``, ``--out`` and,
    where the plots can be redrawn from the JSON, ``--replot``.

    ``--out`` defaults to ``out``, else to the calling study's :func:`results_of` folder.
    """
    if out is None:
        out = results_of(sys._getframe(1).f_globals["__file__"])
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--out", type=Path, default=out, help="result folder")
    if replot:
        p.add_argument("--replot", action="store_true", help="only redraw the PNGs from the JSON")
    return p


# ---------------------------------------------------------------------------- subprocesses
def thread_env(threads: int = 1) -> dict[str, str]:
    """The environment variables that run a child process on ``threads`` threads
    (:data:`THREAD_VARIABLES`), with ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep
    rather than spin on the shared machine. Add them to the child's environment."""
    return {**dict.fromkeys(THREAD_VARIABLES, str(threads)), "OMP_WAIT_POLICY": "PASSIVE"}


def run_json_child(cmd: list[str], env: dict[str, str] | None = None) -> Any:
    """Run ``cmd`` (a fresh interpreter, e.g. ``python -m benchmarks.<study> --child``, from
    the repository root) and parse the last line of its stdout as JSON."""
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"the measurement {' '.join(cmd[1:])!r} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def git_commit(*args: str) -> str:
    """``git <args>`` in this checkout (default: ``rev-parse HEAD``); empty outside git."""
    out = subprocess.run(["git", "-C", str(ROOT), *(args or ("rev-parse", "HEAD"))],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip()
