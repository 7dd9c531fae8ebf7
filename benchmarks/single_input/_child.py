"""One timing process of the single_input study: every case on whichever ``diffbypass`` the
environment's ``PYTHONPATH`` names (the old tree or the new one).

Run as a script, never as ``-m``: ``python benchmarks/single_input/_child.py --root ROOT ...``,
so that ``sys.path[0]`` is this folder and only ``PYTHONPATH`` decides which ``diffbypass`` and
``diffbypass_stardp`` are imported (the child refuses to run when they come from outside
``--root``). It uses only the API that both trees share, times each case's forward + backward
(wall clock and this process's CPU time) and, with ``--grads FILE``, saves the outputs and input
gradients of three seeded steps for the parent to compare bit for bit. Its last stdout line is
the JSON of the timings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

ESTIMATORS = ("Surrogate", "ES", "Perturbed", "GuidedES", "FiniteDifference", "StraightThrough",
              "DBB")  # fmt: skip
#: the inputs: a cheap elementwise fn on a small batch (the library's own cost dominates) and
#: the star DP on EDPCNN's warped maps (the DP dominates)
INPUTS = {"elementwise": (8, 16), "star": (10, 25, 65)}
QUICK_INPUTS = {"elementwise": (4, 6), "star": (2, 9, 13)}


def elementwise(x: Tensor) -> Tensor:
    """The cheap black box: rounding, elementwise (output shape = input shape)."""
    return torch.round(x)


class OneHotDP:
    """The star DP as a real, same-shape black box: the one-hot of its contour, :math:`(B, N,
    M)`, so that every estimator (StraightThrough and DBB included) applies."""

    def __init__(self) -> None:
        from diffbypass_stardp import StarDP

        self.dp = StarDP(cost="map", smoothing=0)

    def __call__(self, x: Tensor) -> Tensor:
        return nn.functional.one_hot(self.dp(x), x.shape[-1]).to(x.dtype)


def mlp(d: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d, 32), nn.Tanh(), nn.Linear(32, d))


def layer(estimator: str, input_: str, shape: tuple[int, ...], seed: int) -> nn.Module:
    """A fresh ``Bypass`` of one case; its randomness comes from ``seed`` only."""
    import diffbypass as db

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    star = input_ == "star"
    fn: Callable[[Tensor], Tensor] = OneHotDP() if star else elementwise
    samples = 8 if star else 16
    make: dict[str, Callable[[], Any]] = {
        "ES": lambda: db.ES(sigma=0.5, samples=samples, generator=gen),
        "Perturbed": lambda: db.Perturbed(sigma=0.5, samples=samples, generator=gen),
        "GuidedES": lambda: db.GuidedES(lambda x, v: v, sigma=0.5, samples=samples, history=2,
                                        generator=gen),  # the straight-through direction as guide
        "FiniteDifference": lambda: db.FiniteDifference(eps=1e-2),
        "StraightThrough": lambda: db.StraightThrough(),
        "DBB": lambda: db.DBB(lam=2.0),
    }
    if estimator == "Surrogate" and star:  # EDPCNN's defaults (lvseg train --method edpcnn)
        from diffbypass_stardp import FIT_LOSS, StarDP, StarSurrogate

        fn = StarDP()
        return db.Bypass(fn, db.Surrogate(StarSurrogate(8), sigma=1.0, samples=10, fit_steps=1,
                                          fit_loss=FIT_LOSS, lr=1e-3, generator=gen))
    if estimator == "Surrogate":
        return db.Bypass(fn, db.Surrogate(mlp(shape[-1]), sigma=0.5, samples=8, fit_steps=2,
                                          lr=1e-2, generator=gen))
    return db.Bypass(fn, make[estimator]())


def cases(quick: bool) -> list[tuple[str, str, tuple[int, ...]]]:
    """(estimator, input, shape) of every case; FiniteDifference runs on the elementwise input
    only (on the star maps it would call the DP 2 x 1625 times per map)."""
    inputs = QUICK_INPUTS if quick else INPUTS
    return [(e, i, s) for i, s in inputs.items() for e in ESTIMATORS
            if not (e == "FiniteDifference" and i == "star")]  # fmt: skip


def data(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def step(model: nn.Module, x: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """One forward + backward with upstream gradient ``v``: the output and ``x``'s gradient."""
    x = x.detach().clone().requires_grad_(True)
    y = model(x)
    y.backward(v)
    return y.detach(), x.grad


def run_case(estimator: str, input_: str, shape: tuple[int, ...], seed: int, warmup: int,
             repeats: int, min_time: float) -> dict[str, Any]:  # fmt: skip
    """Wall and CPU seconds per forward + backward (one value per repeat) and the seeded steps."""
    model, x = layer(estimator, input_, shape, seed), data(shape, seed + 2)
    with torch.no_grad():
        y = model.fn(x)
    if y.is_floating_point():
        v = torch.cos(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)
        step_fn = lambda: step(model, x, v)  # noqa: E731
    else:  # the star DP's indices under a cross-entropy surrogate
        step_fn = lambda: _int_step(model, x)  # noqa: E731
    steps = [t for _ in range(3) for t in step_fn()]  # the exactness record, untimed
    for _ in range(warmup):  # more untimed steps
        step_fn()
    wall, cpu = [], []
    for _ in range(repeats):
        calls, w0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            step_fn()
            calls += 1
            if time.perf_counter() - w0 >= min_time:
                break
        wall.append((time.perf_counter() - w0) / calls)
        cpu.append((time.process_time() - c0) / calls)
    return {"wall": wall, "cpu": cpu, "steps": steps}


def _int_step(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """An integer-output step (the star DP's indices under a cross-entropy surrogate): the
    loss is a fixed linear function of the surrogate's differentiable prediction."""
    x = x.detach().clone().requires_grad_(True)
    y = model(x)
    logits = model.predict(x)
    (logits * torch.cos(torch.arange(logits.numel())).reshape(logits.shape)).sum().backward()
    return y.detach(), x.grad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, required=True, help="the tree diffbypass must come from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.05)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--grads", type=Path, help="save the seeded steps' outputs and gradients here")
    a = p.parse_args()
    torch.set_num_threads(1)
    import diffbypass
    import diffbypass_stardp

    for module in (diffbypass, diffbypass_stardp):
        if a.root.resolve() not in Path(module.__file__ or "/").resolve().parents:
            raise SystemExit(f"{module.__name__} came from {module.__file__}, not {a.root}")
    out: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "cases": {}}
    grads: dict[str, list[Tensor]] = {}
    for estimator, input_, shape in cases(a.quick):
        key = f"{estimator}/{input_}"
        got = run_case(estimator, input_, shape, a.seed, a.warmup, a.repeats, a.min_time)
        grads[key] = got.pop("steps")
        out["cases"][key] = {"shape": list(shape), **got}
    if a.grads:
        torch.save(grads, a.grads)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
