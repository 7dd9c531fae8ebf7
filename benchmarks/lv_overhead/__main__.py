"""Overhead of the bypass in the LV example: EDPCNN against the plain U-Net, training and inference.

Writes ``benchmarks/lv_overhead/results/lv_overhead.json`` (a ``"table"``, the ``"method"``, ``"machine"``,
``"config"`` and every raw timing) and ``lv_overhead.png`` (stacked bars: where the time of a
training iteration and of inference goes).

Method
------
Same run, same data, same U-Net: the bundled Sunnybrook sample, the first 10 images of the
training split of ``lvseg`` (``TrainConfig(train_size=10)``, patient split seed 0), batch
size 10, and every other ``TrainConfig`` default of ``lvseg`` (the CPU-sized U-Net; EDPCNN with
the default surrogate settings, written in each record's ``"config"``; EDPCNN-ES with S = 10
antithetic samples). A non-default point at every thread count: EDPCNN with 1 fit step, the
default before ``benchmarks/lv_stability`` raised it to 3. Two more, single-threaded only, show
what issue #9 changed: EDPCNN with the defaults before it (S = 10 exploration samples, 2 fit
steps, StarSurrogate(8); all rounds) and the same with the thesis' 10 fit steps, timed over
``--thesis-repeats`` (10) iterations after 1 warm-up in the same interleaved loop (it skips the
later rounds).

Training: one ``lvseg.train.Trainer`` per method, built before anything is timed. A timed
iteration is one call of ``Trainer.step()``: batch sampling, centre jitter, forward, loss,
backward and the Adam step, exactly what ``lvseg train`` runs (validation and checkpoints,
every 25 iterations there, are not included). The methods are timed *interleaved* (one
iteration of each in turn), so a change in the machine's load hits all of them alike. Warm-up
iterations (``--warmup``, 3) run first and are not timed; then ``--repeats`` (20) timed
iterations per method. Reported: median and interquartile range; the ratio of medians
EDPCNN / U-Net.

Breakdown of an iteration, from the same timed iterations: timestamps taken by module hooks
(U-Net forward start/end, Bypass forward start/end, a gradient hook on the warped map, the
U-Net's backward pre-hook, the optimiser's step pre/post hooks) and by timing wrappers around
the black box (every ``StarDP`` call, with its batch size), the surrogate's ``fit`` and
``predict``. The pieces: data and centre jitter; U-Net forward; star points and warp; DP on the
batch (the forward value); DP on the S x B exploration samples (surrogate fit; for ES, in the
backward pass); surrogate fit without the DP (``fit_steps`` Adam steps of the surrogate on
S x B warped maps); true indices and other Bypass work; surrogate predict (forward);
surrogate predict backward (for ES: the ES backward without the DP); warp + U-Net backward;
Adam step. The pieces add up to the total; what no timestamp covers is "other". The hooks and
wrappers only read the clock.

Inference: ``lvseg.segment.segment`` on test-split images, seconds per image at batch 1 and
batch 10: ``unet`` (U-Net + threshold) against ``edpcnn`` (U-Net, then ``segment_stars``: star
points, nearest warp, DP, contour, mask), with the pieces timed separately through the same
public functions ``segment`` calls. 5 warm-up calls, then ``--repeats`` x 5 timed calls (100 by default).

Threads: each thread setting runs in a fresh process with ``torch.set_num_threads(t)`` and
``NUMBA_NUM_THREADS = t`` (the star DP's thread pool), ``OMP_WAIT_POLICY=PASSIVE``; 1 thread is
the main result, 2 threads (all cores) is also reported. The machine may be shared: the load
average at the start and end of every process is in the JSON.

Run ``python -m benchmarks.lv_overhead`` (about 4 minutes on 2 CPU cores) or ``--quick``
(1 thread, 1 warm-up, 5 repeats; under 2 minutes; written as ``lv_overhead_quick.*``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import _harness as h
from benchmarks.lv_overhead._report import (INFER_PIECES, K1, METHOD_TEXT, OLD, THESIS,
                                             TRAIN_METHODS, Clock, breakdown, plot, table,
                                             timed)  # fmt: skip


# ---------------------------------------------------------------------------- instrumentation
def instrument(trainer: Any, clock: Clock) -> None:
    """Hooks and wrappers that read the clock; they change no computation."""
    from diffbypass import Surrogate
    from lvseg.edpcnn import EDPCNN

    model, unet = trainer.model, trainer.unet
    unet.register_forward_pre_hook(lambda *_: clock.mark("unet fwd start"))
    unet.register_forward_hook(lambda *_: clock.mark("unet fwd end"))
    unet.register_full_backward_pre_hook(lambda *_: clock.mark("unet bwd start"))
    trainer.optimizer.register_step_pre_hook(lambda *_: clock.mark("adam start"))
    trainer.optimizer.register_step_post_hook(lambda *_: clock.mark("adam end"))
    if not isinstance(model, EDPCNN):
        return
    bypass = model.bypass
    fn = bypass.blackbox.fn

    def dp(x: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(x)
        clock.dp_calls.append((int(x.shape[0]), time.perf_counter() - t0))
        return out

    bypass.blackbox.fn = dp

    def on_bypass_input(_module: Any, inputs: tuple[Any, ...]) -> None:
        clock.mark("bypass start")
        warped = inputs[0]
        if warped.requires_grad:
            warped.register_hook(lambda grad: clock.mark("warped grad") or grad)

    bypass.register_forward_pre_hook(on_bypass_input)
    bypass.register_forward_hook(lambda *_: clock.mark("bypass end"))
    estimator = bypass.estimator
    if isinstance(estimator, Surrogate):
        estimator.fit = timed(clock, "fit", estimator.fit)
        estimator.predict = timed(clock, "predict", estimator.predict)


# ---------------------------------------------------------------------------- measurements
def train_timings(
    warmup: int, repeats: int, variants: dict[str, dict[str, Any]],
    rounds: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any]:
    """Interleaved timed ``Trainer.step()`` calls of every variant, with the breakdown.

    ``rounds`` gives some variants their own ``(warmup, repeats)``; they take part in the first
    ``warmup + repeats`` rounds only.
    """
    rounds = rounds or {}
    from lvseg.config import TrainConfig
    from lvseg.train import Trainer

    trainers, clocks = {}, {}
    tmp = tempfile.TemporaryDirectory(prefix="lv_overhead_")
    for name, kwargs in variants.items():
        config = TrainConfig(train_size=10, **kwargs)
        trainers[name] = Trainer(config, Path(tmp.name) / name)
        clocks[name] = Clock()
        instrument(trainers[name], clocks[name])
    times: dict[str, list[float]] = {n: [] for n in variants}
    parts: dict[str, list[dict[str, float]]] = {n: [] for n in variants}
    dp_calls: dict[str, list[list[tuple[int, float]]]] = {n: [] for n in variants}
    for it in range(warmup + repeats):
        for name, trainer in trainers.items():
            w, r = rounds.get(name, (warmup, repeats))
            if it >= w + r:
                continue
            clock = clocks[name]
            clock.reset()
            t0 = time.perf_counter()
            trainer.step()
            total = time.perf_counter() - t0
            if it >= w:
                times[name].append(total)
                parts[name].append(breakdown(clock, total, t0, trainer.config.method,
                                             trainer.config.batch_size))  # fmt: skip
                dp_calls[name].append([(b, round(t, 6)) for b, t in clock.dp_calls])
    tmp.cleanup()
    out = {}
    for name in variants:
        pieces = {p: h.summary([d[p] for d in parts[name]], digits=6) for p in parts[name][0]}
        w, r = rounds.get(name, (warmup, repeats))
        cfg = trainers[name].config
        knobs = {k: getattr(cfg, k) for k in ("sigma", "samples", "fit_steps", "surrogate",
                                               "surrogate_channels")}
        out[name] = {"config": {**knobs, **variants[name]}, "warmup": w,
                     "step_s": h.summary(times[name], digits=6), "pieces": pieces,
                     "dp_calls_first_timed": dp_calls[name][0]}  # fmt: skip
    return out


def inference_timings(repeats: int) -> dict[str, Any]:
    """Seconds per image of ``segment`` (unet, edpcnn) at batch 1 and 10, with its pieces."""
    import torch
    from diffbypass_stardp import segment_stars

    from lvseg.config import TrainConfig
    from lvseg.methods import build_model
    from lvseg.prepare import prepare_data
    from lvseg.segment import segment

    config = TrainConfig(method="edpcnn", train_size=10)
    data = prepare_data(config)
    t = data.data.subset(data.test[:10]).to_tensors()
    unet = build_model(config).unet.eval()
    star = config.star
    dp = star.dp("float")
    out: dict[str, Any] = {}
    calls = 5 * repeats
    for batch in (1, 10):
        images, centers = t["images"][:batch], t["centers"][:batch]
        pieces: dict[str, list[float]] = defaultdict(list)
        totals: dict[str, list[float]] = defaultdict(list)
        for k in range(5 + calls):
            for method in ("unet", "edpcnn"):
                t0 = time.perf_counter()
                segment(method, unet, images, centers, star)
                if k >= 5:
                    totals[method].append((time.perf_counter() - t0) / batch)
            # the pieces of the edpcnn prediction, through the functions segment calls
            with torch.no_grad():
                t0 = time.perf_counter()
                maps = unet(images)
                t1 = time.perf_counter()
                segment_stars(maps, centers, dp, n_lines=star.n_lines, n_points=star.n_points,
                              radius=star.radius)  # fmt: skip
                t2 = time.perf_counter()
            if k >= 5:
                for name, span in zip(INFER_PIECES, (t1 - t0, t2 - t1)):
                    pieces[name].append(span / batch)
        res = {m: h.summary(v, digits=6) for m, v in totals.items()}
        piece_stats = {p: h.summary(v, digits=6) for p, v in pieces.items()}
        piece_stats["other"] = {"median": res["edpcnn"]["median"]
                                - sum(s["median"] for s in piece_stats.values())}  # fmt: skip
        out[f"batch{batch}"] = {"per_image_s": res, "edpcnn_pieces": piece_stats}
    return out


def child(args: argparse.Namespace) -> None:
    """One thread setting, in this process; prints its results as JSON on stdout."""
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    variants: dict[str, dict[str, Any]] = {m: {"method": m} for m in TRAIN_METHODS}
    rounds: dict[str, tuple[int, int]] = {}
    if not args.quick:  # the default before lv_stability, at every thread count
        variants[K1] = {"method": "edpcnn", "fit_steps": 1}
    if args.threads == 1 and not args.quick:  # non-default points: how the fit's cost scales
        old = {"method": "edpcnn", "samples": 10, "fit_steps": 2, "surrogate": "star",
               "surrogate_channels": 8}
        variants[OLD] = old
        variants[THESIS] = {**old, "fit_steps": 10}
        rounds[THESIS] = (1, args.thesis_repeats)
    train = train_timings(args.warmup, args.repeats, variants, rounds)
    infer = inference_timings(args.repeats)
    import diffbypass_stardp._config as stardp_config

    result = {
        "threads": args.threads, "torch_threads": torch.get_num_threads(),
        "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", "0")),
        "stardp_threads": stardp_config.THREADS,
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - t0, 1), "train": train, "inference": infer,
    }  # fmt: skip
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    p = h.parser(__doc__, "1 thread, 1 warm-up, 5 repeats (lv_overhead_quick.*)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations per method")
    p.add_argument("--repeats", type=int, default=20, help="timed iterations per method")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--thesis-repeats", type=int, default=10,
                   help="timed iterations of EDPCNN with 10 fit steps (1 thread only)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.threads = 1, 5, [1]
    stem = h.result_file(args.out, "lv_overhead", args.quick).stem
    if args.child:
        args.threads = args.threads[0]
        child(args)
        return
    redraw = lambda data, png: plot(data["settings"], png)  # noqa: E731
    if h.replot(args.replot, args.out / f"{stem}.json", redraw):
        return
    start, load = time.perf_counter(), h.Load()
    settings = []
    for threads in args.threads:
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
        cmd = [sys.executable, "-m", "benchmarks.lv_overhead", "--child", "--threads", str(threads),
               "--warmup", str(args.warmup), "--repeats", str(args.repeats),
               "--thesis-repeats", str(args.thesis_repeats)] + ["--quick"] * args.quick  # fmt: skip
        settings.append(h.run_json_child(cmd, env))
        print(f"{threads} thread(s): {settings[-1]['seconds']} s", file=sys.stderr, flush=True)
    data = {
        "benchmark": "lv_overhead",
        "title": "LV example: EDPCNN against U-Net, seconds per training iteration and per image",
        "method": METHOD_TEXT,
        "machine": h.machine_info(load_average_start_end=str(load)),
        "config": {"warmup": args.warmup, "repeats": args.repeats, "threads": args.threads,
                   "thesis_fit_steps_repeats": args.thesis_repeats,
                   "batch_size": 10, "data": "sunnybrook (bundled), train_size 10",
                   "commit": h.git_commit()},  # fmt: skip
        "table": table(settings),
        "settings": settings,
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    h.write_result(args.out / f"{stem}.json", data)
    plot(settings, args.out / f"{stem}.png")


if __name__ == "__main__":
    main()
