"""The Surrogate's threads: a small surrogate step on torch's default threads, on one, and "auto".

Writes ``benchmarks/surrogate_threads/results/surrogate_threads.json`` (a ``"table"``, the ``"method"``,
``"machine"`` and every raw timing).

Method
------
One training step of ``Bypass(fn, Surrogate(net))``: the forward (fn at 10 perturbed copies of
a batch of 8 inputs of 16 features, 2 fit steps of a 16-64-16 MLP) and the backward (the
surrogate's VJP); ``fn`` is ``round`` (no cost of its own). Threads: ``threads=None`` (torch's
default: one thread per core, the default before issue #22), ``threads=1`` and ``threads="auto"``
(the default now). Each setting runs in a fresh interpreter *without* ``OMP_WAIT_POLICY`` (what a
library user gets; ``lvseg`` and ``make test`` set it to PASSIVE), with torch's default thread
count: 3 warm-up steps, then --repeats (15) timed steps, median and quartiles. Machine states:
``idle`` (whatever else runs on the machine; its load average is reported) and ``busy``: one more
process per core spinning in a Python loop for the whole measurement (as other users' jobs
would). Settings alternate within each state so that a change of load hits them alike.

Run ``python -m benchmarks.surrogate_threads`` (``--quick``: 5 steps per setting).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import _harness as h

SETTINGS = {"None": None, "1": 1, "auto": "auto"}


def _child(setting: str, repeats: int) -> None:
    """Time the step in this (fresh) interpreter and print the seconds as JSON."""
    import torch

    from diffbypass import Bypass, Surrogate

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(), torch.nn.Linear(64, 16))
    layer = Bypass(torch.round, Surrogate(net, sigma=0.5, samples=10, fit_steps=2,
                                          threads=SETTINGS[setting]))  # fmt: skip
    x = torch.randn(8, 16, requires_grad=True)

    def step() -> None:
        layer(x).sum().backward()

    times = h.time_calls(step, repeats, warmup=3)
    print(json.dumps({"times": times, "torch_threads": torch.get_num_threads()}))


def _spin(stop: float) -> None:
    while time.time() < stop:
        pass


def measure(repeats: int) -> dict[str, dict[str, list[float]]]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(h.ROOT.parent), env.get("PYTHONPATH", "")])
    out: dict[str, dict[str, list[float]]] = {}
    for state in ("idle", "busy"):
        spinners = []
        if state == "busy":
            stop = time.time() + 3600
            ctx = multiprocessing.get_context("spawn")
            spinners = [ctx.Process(target=_spin, args=(stop,), daemon=True)
                        for _ in range(os.cpu_count() or 1)]  # fmt: skip
            for p in spinners:
                p.start()
        load = h.Load()
        times: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for _ in range(2):  # alternate: each setting twice, in turn
            for name in SETTINGS:
                cmd = [sys.executable, __file__, "--child", name, str(max(repeats // 2, 2))]
                times[name] += h.run_json_child(cmd, env=env)["times"]
        for p in spinners:
            p.kill()
            p.join()
        out[state] = {**times, "load": str(load)}  # type: ignore[dict-item]
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]))
        return
    p = h.parser(__doc__, "5 steps per setting", replot=False)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    repeats = 5 if args.quick else args.repeats
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    raw = measure(repeats)
    rows = []
    for state, times in raw.items():
        stats = {name: h.summary(times[name]) for name in SETTINGS}
        base = stats["None"]["median"]
        for name in SETTINGS:
            med = stats[name]["median"]
            rows.append([state, f"threads={name}", med * 1e3, base / med, times["load"]])
    h.write_result(args.out / "surrogate_threads.json", {
        "table": {"columns": ["machine", "setting", "ms per step (median)",
                              "speed-up over threads=None", "load start / end"], "rows": rows},
        "method": h.method_text(__doc__),
        "machine": h.machine_info(uptime=uptime),
        "raw": raw,
    })  # fmt: skip


if __name__ == "__main__":
    main()
