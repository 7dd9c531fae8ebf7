"""DDP on this machine: a training step on 1 process against 2 (gloo), and the all-reduce cost.

Writes ``benchmarks/ddp/results/ddp.json`` (``ddp_quick.json`` with ``--quick``).

Method
------
For each method (``unet``: the U-Net trained on pixels; ``edpcnn``: the U-Net trained through
the star DP with a surrogate) a round runs ``lvseg``'s :class:`~lvseg.train.Trainer` on the
synthetic data (``--synthetic-slices 48``, global batch 8, the default network sizes) on 1
process and then on 2 processes (``torch.multiprocessing.spawn``, gloo on 127.0.0.1, one torch
thread per process, ``OMP_WAIT_POLICY=PASSIVE``) — the same code path as ``torchrun -m
lvseg.cli train``: each rank takes half of the global batch, DDP averages the U-Net's gradients,
the surrogate averages its fit gradients. ``--warmup`` untimed steps (2), then ``--steps``
timed ``Trainer.step`` calls (10; rank 0's clock, the ranks being in lockstep); the median.
Rounds (``--rounds``, 3) interleave 1 and 2 processes so that a change of load hits both. The
all-reduce cost: on 2 processes, the median wall time of ``--steps`` all-reduces of one float32
buffer of the U-Net's parameter count (what DDP reduces per step, in its buckets), and of the
surrogate's. The 1-minute load average is recorded at the start and end of every round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks import _harness as h
from benchmarks.ddp._worker import _worker

OUT = Path(__file__).resolve().parent / "results"
METHODS = ("unet", "edpcnn")


def _run(method: str, world: int, args: argparse.Namespace) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    if world == 1:
        os.environ.pop("WORLD_SIZE", None)
        _worker(0, 1, port, method, args, out)
    else:
        torch.multiprocessing.spawn(_worker, (world, port, method, args, out), nprocs=world)
    result = json.loads(Path(out).read_text())
    os.unlink(out)
    return result


def as_table(summary: dict) -> dict:
    """The per-method summary as the results convention's ``{"columns", "rows"}`` table."""
    columns = ["method", "step, 1 process (s)", "step, 2 processes (s)", "speed-up",
               "U-Net all-reduce (ms)", "surrogate all-reduce per fit step (ms)"]
    rows = [[m, round(v["step_1_process_s"], 3), round(v["step_2_processes_s"], 3),
             round(v["speedup"], 2), round(1e3 * v["allreduce_unet_s"], 2),
             round(1e3 * v["allreduce_surrogate_s"], 2) if "allreduce_surrogate_s" in v else "-"]
            for m, v in summary.items()]  # fmt: skip
    return {"columns": columns, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ddp", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 steps, 1 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup, args.rounds = 3, 1, 1
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    rounds = []
    for r in range(args.rounds):
        for method in METHODS:
            load = os.getloadavg()[0]
            one, two = _run(method, 1, args), _run(method, 2, args)
            rounds.append({"round": r, "method": method, "one": one, "two": two,
                           "load": [load, os.getloadavg()[0]]})  # fmt: skip
    table = {}
    for method in METHODS:
        mine = [x for x in rounds if x["method"] == method]
        one = statistics.median(x["one"]["step_s"] for x in mine)
        two = statistics.median(x["two"]["step_s"] for x in mine)
        table[method] = {"step_1_process_s": one, "step_2_processes_s": two, "speedup": one / two,
                         **{k: statistics.median(x["two"][k] for x in mine)
                            for k in mine[0]["two"] if k.startswith(("allreduce", "unet_", "surrogate_"))}}  # fmt: skip
    result = {"table": as_table(table), "summary": table, "method": __doc__.split("Method\n------\n")[1].strip(),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "torch": torch.__version__},
              "options": vars(args), "rounds": rounds}  # fmt: skip
    path = OUT / ("ddp_quick.json" if args.quick else "ddp.json")
    h.atomic_write(path, json.dumps(result, indent=1) + "\n")
    print(json.dumps(table, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
