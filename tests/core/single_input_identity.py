"""Before/after check of the single-input path: bit-identical gradients, forward+backward time.

Run it once on the old code and once on the new (``PYTHONPATH`` chooses which ``diffbypass``)::

    PYTHONPATH=/path/to/old python tests/core/single_input_identity.py --save old.pt
    PYTHONPATH=. python tests/core/single_input_identity.py --compare old.pt

``--save`` writes the outputs and input gradients of single-input ES, Surrogate, Perturbed and
FiniteDifference for fixed seeds; ``--compare`` recomputes them and checks they are bit-identical
(``torch.equal``). ``--time`` prints the median forward+backward time per call of each (small
case, ``--repeats`` calls after a warm-up); with two ``PYTHONPATH`` roots in ``--roots`` the
timings of the two versions are interleaved (alternating blocks, so that a loaded machine slows
both alike) in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch


def _fn(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x.sum(-1, keepdim=True) + torch.sign(x)


def layers(seed: int) -> dict[str, torch.nn.Module]:
    from diffbypass import ES, Bypass, FiniteDifference, Perturbed, Relative, Surrogate

    g = lambda k: torch.Generator().manual_seed(seed + k)  # noqa: E731
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.Tanh(), torch.nn.Linear(32, 6))
    return {
        "es": Bypass(_fn, ES(sigma=0.3, samples=16, generator=g(1))),
        "es_relative": Bypass(_fn, ES(sigma=Relative(0.2), samples=8, antithetic=False,
                                      shaping="centered_ranks", generator=g(2))),
        "surrogate": Bypass(_fn, Surrogate(net, sigma=0.5, samples=8, fit_steps=2, generator=g(3))),
        "perturbed": Bypass(_fn, Perturbed(sigma=0.5, samples=16, noise="gumbel", generator=g(4))),
        "finite_difference": Bypass(_fn, FiniteDifference(eps=1e-3)),
    }


def results(seed: int = 0) -> dict[str, list[torch.Tensor]]:
    out = {}
    for name, layer in layers(seed).items():
        got = []
        for step in range(3):
            x = torch.randn(8, 6, generator=torch.Generator().manual_seed(100 + step),
                            dtype=torch.float64).requires_grad_(True)
            y = layer(x)
            y.backward(torch.cos(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape))
            got += [y.detach(), x.grad.detach()]
        out[name] = got
    return out


def timings(repeats: int) -> dict[str, float]:
    torch.set_num_threads(1)
    times = {}
    for name, layer in layers(0).items():
        x = torch.randn(8, 6, dtype=torch.float64, requires_grad=True)
        for _ in range(5):
            layer(x).sum().backward()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            layer(x).sum().backward()
            runs.append(time.perf_counter() - start)
        times[name] = sorted(runs)[len(runs) // 2]
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--save")
    p.add_argument("--compare")
    p.add_argument("--time", action="store_true")
    p.add_argument("--roots", nargs=2, help="two PYTHONPATH roots (old, new) to time interleaved")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--repeats", type=int, default=200)
    a = p.parse_args()
    if a.save:
        torch.save(results(), a.save)
    if a.compare:
        old, new = torch.load(a.compare, weights_only=True), results()
        same = {k: all(torch.equal(u, v) for u, v in zip(old[k], new[k])) for k in old}
        print(json.dumps({"bit_identical": same}))
        if not all(same.values()):
            sys.exit(1)
    if a.time and not a.roots:
        print(json.dumps(timings(a.repeats)))
    if a.roots:
        per_root: dict[str, list[dict[str, float]]] = {r: [] for r in a.roots}
        for _ in range(a.rounds):
            for root in a.roots:
                env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1")
                cmd = [sys.executable, __file__, "--time", "--repeats", str(a.repeats)]
                line = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                per_root[root].append(json.loads(line.stdout.strip().splitlines()[-1]))
        summary = {}
        for root, rows in per_root.items():
            summary[root] = {k: sorted(r[k] for r in rows)[len(rows) // 2] * 1e3 for k in rows[0]}
        print(json.dumps({"median_ms_per_forward_backward": summary}, indent=1))


if __name__ == "__main__":
    main()
