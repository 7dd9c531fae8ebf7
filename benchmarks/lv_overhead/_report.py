"""The clock and breakdown of an iteration, table, figure and method text of ``lv_overhead.py``.

Nothing here needs ``lvseg``: the hooks that read the clock are installed by ``lv_overhead.py``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import _harness as h

TRAIN_METHODS = ("unet", "edpcnn", "edpcnn-es")
#: Pieces of a training iteration, in the order of the stacked bars.
PIECES = (
    "data + centre jitter", "U-Net forward", "star points + warp", "DP on the batch",
    "DP on S x B samples", "surrogate fit (w/o DP)", "true indices + Bypass other",
    "surrogate predict", "surrogate predict backward", "ES backward (w/o DP)",
    "loss", "warp + U-Net backward", "U-Net backward", "Adam step", "other",
)  # fmt: skip
THESIS = "edpcnn, 10 fit steps"
OLD = "edpcnn, old defaults"
K1 = "edpcnn, 1 fit step"
INFER_PIECES = ("U-Net forward", "star + warp + DP + contour + mask (segment_stars)", "other")


# ---------------------------------------------------------------------------- breakdown
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
        # the first call is the forward value; the others evaluate the S x B samples (S = 1
        # gives them the batch's size, so the size cannot tell them apart)
        dp_batch = clock.dp_calls[0][1] if clock.dp_calls else 0.0
        dp_samples = sum(t for _, t in clock.dp_calls[1:])
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
        for name, what in ((K1, "EDPCNN with 1 fit step, the default before lv_stability "
                                "(S = 1, StarSurrogate)"),
                           (OLD, "EDPCNN with the defaults before issue #9 (S = 10, 2 fit "
                                 "steps, StarSurrogate)"),
                           (THESIS, "EDPCNN with the thesis' 10 fit steps (S = 10, "
                                    "StarSurrogate)")):
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
    "other": "#e5e5e5", "star + warp + DP + contour + mask (segment_stars)": "#55a868",
}  # fmt: skip


def bar(ax: Any, x: float, height: float, label: str, **kw: Any) -> None:
    """One bar; its label goes into the legend only the first time it is seen."""
    seen = ax.get_legend_handles_labels()[1]
    ax.bar(x, height, label=None if label in seen else label, **kw)


def label_axes(ax: Any, ticks: list[float], labels: list[str], ylabel: str, title: str,
               fontsize: float) -> None:  # fmt: skip
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, fontsize=fontsize)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")


def plot(settings: list[dict[str, Any]], path: Path) -> None:
    fig, axes = h.pyplot().subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    labels, ticks, x = [], [], 0.0
    for s in settings:
        for name, res in s["train"].items():
            bottom = 0.0
            for piece in PIECES:
                if piece not in res["pieces"]:
                    continue
                height = max(res["pieces"][piece]["median"], 0.0)
                label = "(warp +) U-Net backward" if "U-Net backward" in piece else piece
                bar(ax, x, height, label, bottom=bottom, color=COLORS[piece], edgecolor="white",
                    lw=0.3)  # fmt: skip
                bottom += height
            st = res["step_s"]
            yerr = [[st["median"] - st["q25"]], [st["q75"] - st["median"]]]
            ax.errorbar(x, st["median"], yerr=yerr, color="k", capsize=3)
            ax.text(x, st["q75"] + 0.04, f"{st['median']:.2f} s", ha="center", va="bottom",
                    fontsize=7.5)  # fmt: skip
            labels.append(f"{name.replace(', ', chr(10))}\n{s['threads']} thr")
            ticks.append(x)
            x += 1
        x += 0.5
    label_axes(ax, ticks, labels, "seconds per training iteration (batch 10)",
               "Training iteration: median (IQR bar), stacked median pieces", fontsize=7.5)
    ax = axes[1]
    labels, ticks, x = [], [], 0.0
    for s in settings:
        for batch in (1, 10):
            inf = s["inference"][f"batch{batch}"]
            u = inf["per_image_s"]["unet"]["median"]
            bar(ax, x, 1e3 * u, "U-Net (whole segment call)", color=COLORS["U-Net forward"],
                alpha=0.6)  # fmt: skip
            bottom = 0.0
            for piece in INFER_PIECES:
                height = 1e3 * max(inf["edpcnn_pieces"][piece]["median"], 0.0)
                bar(ax, x + 1, height, piece, bottom=bottom, color=COLORS[piece])
                bottom += height
            e = inf["per_image_s"]["edpcnn"]["median"]
            ax.text(x + 1, max(bottom, 1e3 * e) + 0.3, f"{e / u:.2f}x", ha="center",
                    va="bottom", fontsize=7.5)  # fmt: skip
            labels += [f"U-Net\nb={batch}\n{s['threads']} thr",
                       f"EDPCNN\nb={batch}\n{s['threads']} thr"]  # fmt: skip
            ticks += [x, x + 1]
            x += 2.6
    label_axes(ax, ticks, labels, "ms per image",
               "Inference per image: U-Net vs U-Net + warp + DP + star mask", fontsize=7)
    h.save(fig, path)


METHOD_TEXT = (
    "Seconds per training iteration (lvseg Trainer.step: sampling, centre jitter, forward, "
    "loss, backward, Adam; batch 10) and per image at inference (lvseg segment), EDPCNN "
    "against the plain U-Net in the same process: same U-Net, same 10 Sunnybrook training "
    "images, every lvseg TrainConfig default (the EDPCNN surrogate settings are in each "
    "record's config and in the JSON's config; extra rows, not defaults: EDPCNN with 1 fit "
    "step, the default before lv_stability (every thread count), and at 1 thread the "
    "defaults before issue #9 (S = 10 samples, 2 fit steps, StarSurrogate(8)) and the thesis' "
    "10 fit steps with them (10 repeats)). Methods "
    "are timed interleaved, one iteration each in turn, after "
    "untimed warm-up iterations; the figure is the median of the timed repeats (IQR and raw "
    "values in the JSON). The breakdown of an iteration comes from clock-reading hooks and "
    "wrappers on the same timed iterations (U-Net forward/backward, Bypass forward, every StarDP "
    "call, surrogate fit and predict, the gradient reaching the warped map, the Adam step).\n\n"
    "Each thread setting runs in its own process (torch threads = NUMBA_NUM_THREADS = t, "
    "OMP_WAIT_POLICY=PASSIVE). The CPU machine is shared with other jobs: the load average at "
    "the start and end of each setting is in the table. Thesis ratios were measured on a GPU."
)
