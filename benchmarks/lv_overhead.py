"""Overhead of the bypass in the LV example: EDPCNN against the plain U-Net, training and inference.

Writes ``benchmarks/results/lv_overhead.json`` (a ``"table"``, the ``"method"``, ``"machine"``,
``"config"`` and every raw timing) and ``lv_overhead.png`` (stacked bars: where the time of a
training iteration and of inference goes).

Method
------
Same run, same data, same U-Net: the bundled Sunnybrook sample, the first 10 images of the
training split of ``lvseg`` (``TrainConfig(train_size=10)``, patient split seed 0), batch
size 10, and every other ``TrainConfig`` default of ``lvseg`` (the CPU-sized U-Net; EDPCNN with
StarSurrogate, S = 10 exploration samples and 2 fit steps per iteration; EDPCNN-ES with
S = 10 antithetic samples). Two non-default points, single-threaded only, show how the
surrogate fit's cost scales: EDPCNN with the thesis' 10 fit steps, timed over
``--thesis-repeats`` (10) iterations after 1 warm-up in the same interleaved loop (it skips the
later rounds), and EDPCNN with S = 1 exploration sample and 1 fit step (all rounds).

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
backward pass); surrogate fit without the DP (``fit_steps`` Adam steps of StarSurrogate on
S x B warped maps); true indices and other Bypass work; surrogate predict (forward);
surrogate predict backward (for ES: the ES backward without the DP); warp + U-Net backward;
Adam step. The pieces add up to the total; what no timestamp covers is "other". The hooks and
wrappers only read the clock.

Inference: ``lvseg.segment.segment`` on test-split images, seconds per image at batch 1 and
batch 10: ``unet`` (U-Net + sigmoid + threshold) against ``edpcnn`` (U-Net, star warp, DP,
contour, polygon to mask), with the pieces timed separately through the same public functions
``segment`` calls. 5 warm-up calls, then ``--repeats`` x 5 timed calls (100 by default).

Threads: each thread setting runs in a fresh process with ``torch.set_num_threads(t)`` and
``NUMBA_NUM_THREADS = t`` (the star DP's thread pool), ``OMP_WAIT_POLICY=PASSIVE``; 1 thread is
the main result, 2 threads (all cores) is also reported. The machine may be shared: the load
average at the start and end of every process is in the JSON.

Run ``python benchmarks/lv_overhead.py`` (about 4 minutes on 2 CPU cores) or ``--quick``
(1 thread, 1 warm-up, 5 repeats; under 2 minutes; written as ``lv_overhead_quick.*``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _machine import machine_info  # benchmarks/_machine.py

ROOT = Path(__file__).resolve().parent
TRAIN_METHODS = ("unet", "edpcnn", "edpcnn-es")
#: Pieces of a training iteration, in the order of the stacked bars.
PIECES = (
    "data + centre jitter", "U-Net forward", "star points + warp", "DP on the batch",
    "DP on S x B samples", "surrogate fit (w/o DP)", "true indices + Bypass other",
    "surrogate predict", "surrogate predict backward", "ES backward (w/o DP)",
    "loss", "warp + U-Net backward", "U-Net backward", "Adam step", "other",
)  # fmt: skip
THESIS = "edpcnn, 10 fit steps"
LEAN = "edpcnn, S=1, 1 fit step"
INFER_PIECES = ("U-Net forward", "star points + warp", "DP", "contour + polygon mask", "other")


def stats(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "n": len(arr),
            "raw": [round(float(v), 6) for v in arr]}  # fmt: skip


# ---------------------------------------------------------------------------- instrumentation
class Clock:
    """Collects named timestamps and durations of one training iteration."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.spans: dict[str, float] = defaultdict(float)
        self.dp_calls: list[tuple[int, float]] = []

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def reset(self) -> None:
        self.marks, self.spans, self.dp_calls = {}, defaultdict(float), []


def timed(clock: Clock, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock.spans[name] += time.perf_counter() - t0
            clock.mark(name + " end")

    return wrapper


def instrument(trainer: Any, clock: Clock) -> None:
    """Hooks and wrappers that read the clock; they change no computation."""
    from lvseg.pipeline import EDPCNN

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
    if hasattr(estimator, "fit"):
        estimator.fit = timed(clock, "fit", estimator.fit)
        estimator.predict = timed(clock, "predict", estimator.predict)


def breakdown(
    clock: Clock, total: float, t_start: float, method: str, batch: int
) -> dict[str, float]:
    m, s = clock.marks, clock.spans
    out: dict[str, float] = {}
    out["data + centre jitter"] = m["unet fwd start"] - t_start
    out["U-Net forward"] = m["unet fwd end"] - m["unet fwd start"]
    if method == "unet":
        out["loss"] = m["unet bwd start"] - m["unet fwd end"]  # pixel loss, zero_grad, its bwd
        out["U-Net backward"] = m["adam start"] - m["unet bwd start"]
    else:
        dp_batch = sum(t for b, t in clock.dp_calls if b <= batch)
        dp_samples = sum(t for b, t in clock.dp_calls if b > batch)
        out["star points + warp"] = m["bypass start"] - m["unet fwd end"]
        out["DP on the batch"] = dp_batch
        out["DP on S x B samples"] = dp_samples
        if method == "edpcnn":
            out["surrogate fit (w/o DP)"] = s["fit"] - dp_samples
            bypass_other = (m["bypass end"] - m["bypass start"]) - s["fit"] - dp_batch
            out["surrogate predict"] = s["predict"]
            after_predict = m["predict end"]
            out["true indices + Bypass other"] = bypass_other + (m["predict end"] - s["predict"]
                                                                 - m["bypass end"])  # fmt: skip
            out["surrogate predict backward"] = m["warped grad"] - after_predict
        else:
            bypass_other = (m["bypass end"] - m["bypass start"]) - dp_batch
            # loss + zero_grad between the Bypass and the backward pass: not separable here
            out["true indices + Bypass other"] = bypass_other
            out["ES backward (w/o DP)"] = (m["warped grad"] - m["bypass end"]) - dp_samples
        out["warp + U-Net backward"] = m["adam start"] - m["warped grad"]
    out["Adam step"] = m["adam end"] - m["adam start"]
    out["other"] = total - sum(out.values())
    return out


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
        pieces = {p: stats([d[p] for d in parts[name]]) for p in parts[name][0]}
        w, r = rounds.get(name, (warmup, repeats))
        out[name] = {"config": variants[name], "warmup": w, "step_s": stats(times[name]),
                     "pieces": pieces, "dp_calls_first_timed": dp_calls[name][0]}  # fmt: skip
    return out


def inference_timings(repeats: int) -> dict[str, Any]:
    """Seconds per image of ``segment`` (unet, edpcnn) at batch 1 and 10, with its pieces."""
    import torch
    from diffbypass_stardp import contour_points, polygon_mask, warp

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
                points = star.points(centers)
                warped = warp(maps, points, mode=star.interpolation)
                t2 = time.perf_counter()
                indices = dp(warped)
                t3 = time.perf_counter()
                polygon_mask(contour_points(indices, points), tuple(images.shape[-2:]))
                t4 = time.perf_counter()
            if k >= 5:
                for name, span in zip(INFER_PIECES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    pieces[name].append(span / batch)
        res = {m: stats(v) for m, v in totals.items()}
        piece_stats = {p: stats(v) for p, v in pieces.items()}
        piece_stats["other"] = {"median": res["edpcnn"]["median"]
                                - sum(s["median"] for s in piece_stats.values())}  # fmt: skip
        out[f"batch{batch}"] = {"per_image_s": res, "edpcnn_pieces": piece_stats}
    return out


def machine() -> dict[str, Any]:
    return machine_info()


def child(args: argparse.Namespace) -> None:
    """One thread setting, in this process; prints its results as JSON on stdout."""
    import torch

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    variants: dict[str, dict[str, Any]] = {m: {"method": m} for m in TRAIN_METHODS}
    rounds: dict[str, tuple[int, int]] = {}
    if args.threads == 1 and not args.quick:  # non-default points: how the fit's cost scales
        variants[THESIS] = {"method": "edpcnn", "fit_steps": 10}
        rounds[THESIS] = (1, args.thesis_repeats)
        variants[LEAN] = {"method": "edpcnn", "samples": 1, "fit_steps": 1}
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


# ---------------------------------------------------------------------------- output
def table(settings: list[dict[str, Any]]) -> dict[str, Any]:
    cols = ["threads", "what", "U-Net (s)", "EDPCNN (s)", "ratio EDPCNN / U-Net",
            "EDPCNN-ES (s)", "ratio ES / U-Net", "thesis ratio (GPU)", "target ratio",
            "load avg start / end"]  # fmt: skip
    rows = []
    for s in settings:
        load = f"{s['load_average_start'][0]:.2f} / {s['load_average_end'][0]:.2f}"
        tr = s["train"]
        u, e, es = (tr[m]["step_s"]["median"] for m in TRAIN_METHODS)
        rows.append([s["threads"], "training iteration (batch 10)", round(u, 4), round(e, 3),
                     f"{e / u:.2f}x", round(es, 4), f"{es / u:.2f}x", "1.64x", "<= 1.3x", load])
        for name, what in ((THESIS, "EDPCNN with the thesis' 10 fit steps"),
                           (LEAN, "EDPCNN with S = 1 sample and 1 fit step")):
            if name in tr:
                e1 = tr[name]["step_s"]["median"]
                rows.append([s["threads"], f"training iteration, {what} (not default)",
                             round(u, 4), round(e1, 3), f"{e1 / u:.2f}x", None, None, None,
                             None, load])  # fmt: skip
        for batch in (1, 10):
            inf = s["inference"][f"batch{batch}"]["per_image_s"]
            ui, ei = inf["unet"]["median"], inf["edpcnn"]["median"]
            rows.append([s["threads"], f"inference per image (batch {batch})", round(ui, 5),
                         round(ei, 5), f"{ei / ui:.2f}x", None, None, "1.16x", "<= 1.05x", load])
    return {"columns": cols, "rows": rows}


#: One colour per piece; the U-Net's backward pass has the same colour with or without the warp.
COLORS = {
    "data + centre jitter": "#bbbbbb", "U-Net forward": "#4c72b0", "loss": "#dd8452",
    "star points + warp": "#ccb974", "DP on the batch": "#55a868",
    "DP on S x B samples": "#1b5e20", "surrogate fit (w/o DP)": "#c44e52",
    "true indices + Bypass other": "#8172b3", "surrogate predict": "#e377c2",
    "surrogate predict backward": "#f7b6d2", "ES backward (w/o DP)": "#937860",
    "warp + U-Net backward": "#64b5cd", "U-Net backward": "#64b5cd", "Adam step": "#8c8c8c",
    "other": "#e5e5e5", "DP": "#55a868", "contour + polygon mask": "#dd8452",
}  # fmt: skip


def plot(settings: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    labels, ticks, x = [], [], 0.0
    for s in settings:
        for name, res in s["train"].items():
            bottom = 0.0
            for piece in PIECES:
                if piece not in res["pieces"]:
                    continue
                h = max(res["pieces"][piece]["median"], 0.0)
                label = "(warp +) U-Net backward" if "U-Net backward" in piece else piece
                seen = ax.get_legend_handles_labels()[1]
                ax.bar(x, h, bottom=bottom, color=COLORS[piece], edgecolor="white", lw=0.3,
                       label=None if label in seen else label)  # fmt: skip
                bottom += h
            st = res["step_s"]
            yerr = [[st["median"] - st["q1"]], [st["q3"] - st["median"]]]
            ax.errorbar(x, st["median"], yerr=yerr, color="k", capsize=3)
            ax.text(x, st["q3"] + 0.04, f"{st['median']:.2f} s", ha="center", va="bottom",
                    fontsize=7.5)  # fmt: skip
            labels.append(f"{name.replace(', ', chr(10))}\n{s['threads']} thr")
            ticks.append(x)
            x += 1
        x += 0.5
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7.5)
    ax.set_ylabel("seconds per training iteration (batch 10)")
    ax.set_title("Training iteration: median (IQR bar), stacked median pieces", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    labels, ticks, x = [], [], 0.0
    for s in settings:
        for batch in (1, 10):
            inf = s["inference"][f"batch{batch}"]
            u = inf["per_image_s"]["unet"]["median"]
            whole = "U-Net (whole segment call)"
            seen = ax.get_legend_handles_labels()[1]
            ax.bar(x, 1e3 * u, color=COLORS["U-Net forward"], alpha=0.6,
                   label=None if whole in seen else whole)
            bottom = 0.0
            for piece in INFER_PIECES:
                h = 1e3 * max(inf["edpcnn_pieces"][piece]["median"], 0.0)
                seen = ax.get_legend_handles_labels()[1]
                ax.bar(x + 1, h, bottom=bottom, color=COLORS[piece],
                       label=None if piece in seen else piece)  # fmt: skip
                bottom += h
            e = inf["per_image_s"]["edpcnn"]["median"]
            ax.text(x + 1, max(bottom, 1e3 * e) + 0.3, f"{e / u:.2f}x", ha="center",
                    va="bottom", fontsize=7.5)  # fmt: skip
            labels += [f"U-Net\nb={batch}\n{s['threads']} thr",
                       f"EDPCNN\nb={batch}\n{s['threads']} thr"]  # fmt: skip
            ticks += [x, x + 1]
            x += 2.6
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("ms per image")
    ax.set_title("Inference per image: U-Net vs U-Net + warp + DP + mask", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


METHOD_TEXT = (
    "Seconds per training iteration (lvseg Trainer.step: sampling, centre jitter, forward, "
    "loss, backward, Adam; batch 10) and per image at inference (lvseg segment), EDPCNN "
    "against the plain U-Net in the same process: same U-Net, same 10 Sunnybrook training "
    "images, every lvseg TrainConfig default (EDPCNN: StarSurrogate, S = 10 samples, 2 fit "
    "steps per iteration; extra rows, not defaults: the thesis' 10 fit steps (10 repeats) and "
    "S = 1 sample with 1 fit step). Methods "
    "are timed interleaved, one iteration each in turn, after "
    "untimed warm-up iterations; the figure is the median of the timed repeats (IQR and raw "
    "values in the JSON). The breakdown of an iteration comes from clock-reading hooks and "
    "wrappers on the same timed iterations (U-Net forward/backward, Bypass forward, every StarDP "
    "call, surrogate fit and predict, the gradient reaching the warped map, the Adam step).\n\n"
    "Each thread setting runs in its own process (torch threads = NUMBA_NUM_THREADS = t, "
    "OMP_WAIT_POLICY=PASSIVE). The CPU machine is shared with other jobs: the load average at "
    "the start and end of each setting is in the table. Thesis ratios were measured on a GPU."
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 thread, 1 warm-up, 5 repeats")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations per method")
    p.add_argument("--repeats", type=int, default=20, help="timed iterations per method")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--thesis-repeats", type=int, default=10,
                   help="timed iterations of EDPCNN with 10 fit steps (1 thread only)")
    p.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=ROOT / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.threads = 1, 5, [1]
    stem = "lv_overhead_quick" if args.quick else "lv_overhead"
    if args.child:
        args.threads = args.threads[0]
        child(args)
        return
    if args.replot:
        data = json.loads((args.out / f"{stem}.json").read_text(encoding="utf-8"))
        plot(data["settings"], args.out / f"{stem}.png")
        return
    start, load_start = time.perf_counter(), os.getloadavg()
    settings = []
    for threads in args.threads:
        env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
        cmd = [sys.executable, __file__, "--child", "--threads", str(threads),
               "--warmup", str(args.warmup), "--repeats", str(args.repeats),
               "--thesis-repeats", str(args.thesis_repeats)]  # fmt: skip
        if args.quick:
            cmd.append("--quick")
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"the {threads}-thread measurement failed")
        settings.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"{threads} thread(s): {settings[-1]['seconds']} s", file=sys.stderr, flush=True)
    info = machine()
    info["load_average_start_end"] = f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    data = {
        "benchmark": "lv_overhead",
        "title": "LV example: EDPCNN against U-Net, seconds per training iteration and per image",
        "method": METHOD_TEXT,
        "machine": info,
        "config": {"warmup": args.warmup, "repeats": args.repeats, "threads": args.threads,
                   "thesis_fit_steps_repeats": args.thesis_repeats,
                   "batch_size": 10, "data": "sunnybrook (bundled), train_size 10",
                   "commit": commit},  # fmt: skip
        "table": table(settings),
        "settings": settings,
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    plot(settings, args.out / f"{stem}.png")
    print(f"wrote {args.out / (stem + '.json')} in {data['runtime_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
