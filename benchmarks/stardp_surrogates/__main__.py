"""Surrogate architectures for ``StarDP``: cost of a fit step against fit quality (issue #9).

Writes ``benchmarks/stardp_surrogates/results/stardp_surrogates.json`` (``"table"``, ``"method"``, ``"machine"``,
raw curves) and ``benchmarks/stardp_surrogates/results/stardp_surrogates.png`` (agreement against fit steps, and
against the time of a fit step). Run: ``python -m benchmarks.stardp_surrogates`` (~10 min on 2
busy cores; ``--iterations 20`` for a smoke run).

Method
------
Architectures: the thesis' U-Net ``StarSurrogate(base_channels, depth)`` (default 8, 3), narrower
and shallower ones, and ``LineSurrogate(channels, layers)`` (line-wise convolutions, circular
along the lines, no pooling). Parameters are counted; FLOPs of one forward pass on a batch of
S*B = 100 maps (N = 25 lines x M = 65 points, the EDPCNN sizes) are counted with
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2).

Time of one fit step: one Adam step of the surrogate on 100 random maps with cross-entropy
against random indices (forward, backward, step; what ``Surrogate.fit`` does per step), one
torch thread. The architectures are timed interleaved (one step of each in turn, ``--repeats``
rounds after 2 warm-up rounds), so a change of machine load hits all of them alike. The table
gives the median and the interquartile range over the rounds of the *CPU time of the thread*
(``time.thread_time``): on a shared machine (this one: 2 cores, load average 6-12 during the
run) the wall time mostly measures the waiting for a core; the wall times are in the JSON.

Fit quality: the fit as lvseg's ``edpcnn`` training runs it (``Surrogate(model, sigma=1,
samples=10, fit_steps=2, fit_loss="ce", lr=1e-3)`` around ``StarDP()``, batch B = 10), on warped
maps of the 56 slices of the bundled Sunnybrook sample (lvseg's loader and preprocessing:
1.37 mm, 128 x 128 around the LV). Each iteration draws 10 slices, jitters the star centres
(``jitter_centers``, 1 x the LV radius) and rotates the star (uniform +-0.5 rad), warps the map
(nearest) and fits. Two maps: ``image``, the normalised MR image (what a network's output looks
like early in training), and ``trained``, a trained network's output proxy,
``3 (2 mask - 1)`` blurred with a Gaussian of 2 px. The judge is ``FitStats.agreement_before``:
the share of lines where the surrogate's argmax equals StarDP's index on the *fresh*
perturbed samples of the iteration, before the surrogate is fitted on them (held out). The
table gives its mean over the last 20 iterations (i.e. after about ``2 * iterations`` fit
steps) and over iterations 11-30; the JSON holds the curves. Seeds: data/noise seed
``--seed`` for every architecture (the same batches and noise), model initialisation seed 0.
"""

from __future__ import annotations

import json
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from benchmarks import _harness as h
from benchmarks._harness import machine_info  # noqa: E402
from scipy import ndimage  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from diffbypass import Bypass, Surrogate  # noqa: E402
from diffbypass_stardp import LineSurrogate, StarDP, StarSurrogate, star_points, warp  # noqa: E402

N, M, B, S = 25, 65, 10, 10

ARCHITECTURES = {
    "StarSurrogate(8, 3) [default, lvseg]": lambda: StarSurrogate(8, 3),
    "StarSurrogate(4, 3)": lambda: StarSurrogate(4, 3),
    "StarSurrogate(4, 2)": lambda: StarSurrogate(4, 2),
    "LineSurrogate(8, 4) [default]": lambda: LineSurrogate(8, 4, (3, 5), max_dilation=4),
    "LineSurrogate(8, 4, (3, 3), no dil.)": lambda: LineSurrogate(8, 4, (3, 3), max_dilation=1),
    "LineSurrogate(8, 6, (3, 3), no dil.)": lambda: LineSurrogate(8, 6, (3, 3), max_dilation=1),
    "LineSurrogate(16, 4, (3, 3), no dil.)": lambda: LineSurrogate(16, 4, (3, 3), max_dilation=1),
}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHITECTURES[name]()


def flops(model: torch.nn.Module) -> int:
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(S * B, N, M))
    return int(counter.get_total_flops())


def time_steps(repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """CPU and wall seconds of one Adam fit step on S*B maps, interleaved over architectures."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(S * B, N, M, generator=g), torch.randint(0, M, (S * B, N), generator=g)
    models = {name: build(name) for name in ARCHITECTURES}
    opts = {name: torch.optim.Adam(m.parameters(), lr=1e-3) for name, m in models.items()}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    wall: dict[str, list[float]] = {name: [] for name in models}
    for rnd in range(repeats + 2):
        for name, model in models.items():
            c0, t0 = time.thread_time(), time.perf_counter()
            opts[name].zero_grad(set_to_none=True)
            F.cross_entropy(model(x).reshape(-1, M), y.reshape(-1)).backward()
            opts[name].step()
            if rnd >= 2:
                cpu[name].append(time.thread_time() - c0)
                wall[name].append(time.perf_counter() - t0)
    return cpu, wall


def load_maps() -> dict[str, np.ndarray | torch.Tensor]:
    from lvseg.data import load_dataset
    from lvseg.data.preprocessing import preprocess

    slices, _ = load_dataset("sunnybrook")
    data, _ = preprocess(slices, spacing=1.37, size=128)
    trained = np.stack([3.0 * ndimage.gaussian_filter(2.0 * m.astype(np.float32) - 1.0, 2.0)
                        for m in data.masks])
    return {"image": torch.from_numpy(data.images[:, 0].astype(np.float32)),
            "trained": torch.from_numpy(trained.astype(np.float32)),
            "masks": data.masks, "centers": data.centers, "radii": data.radii}


def fit_curve(name: str, maps: torch.Tensor, data: dict, iterations: int, seed: int) -> list[float]:
    """``agreement_before`` of every iteration of a fresh surrogate fitted as in lvseg."""
    from lvseg.jitter import jitter_centers

    rng = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed)
    bypass = Bypass(StarDP(), Surrogate(build(name), sigma=1.0, samples=S, fit_steps=2,
                                        fit_loss="ce", lr=1e-3, generator=noise))
    bypass.train()
    curve = []
    for _ in range(iterations):
        idx = rng.choice(len(maps), size=B, replace=False)
        centers = jitter_centers(data["centers"][idx], data["radii"][idx], data["masks"][idx],
                                 1.0, rng)
        angles = torch.from_numpy(rng.uniform(-0.5, 0.5, size=B)).float()
        points = star_points(torch.from_numpy(centers).float(), n_lines=N, n_points=M,
                             radius=65.0, angle=angles)
        bypass(warp(maps[idx], points))
        curve.append(bypass.estimator.stats.agreement_before)
    return curve


def main() -> None:
    parser = h.parser(__doc__, "20 iterations, 3 rounds (stardp_surrogates_quick.*)", replot=False)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.repeats = 20, 3
    stem = "stardp_surrogates_quick" if args.quick else "stardp_surrogates"
    torch.set_num_threads(1)
    started = time.time()
    machine = {**machine_info(), "load_start": list(np.round(np.array(
        __import__("os").getloadavg()), 2))}

    step_times, wall_times = time_steps(args.repeats)
    data = load_maps()
    curves = {w: {name: fit_curve(name, data[w], data, args.iterations, args.seed)
                  for name in ARCHITECTURES} for w in ("image", "trained")}
    machine["load_end"] = list(np.round(np.array(__import__("os").getloadavg()), 2))

    rows, raw = [], {}
    base = float(np.median(step_times[next(iter(ARCHITECTURES))]))
    for name in ARCHITECTURES:
        model = build(name)
        t = np.array(step_times[name]) * 1e3
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        late = {w: float(np.mean(curves[w][name][-20:])) for w in curves}
        early = {w: float(np.mean(curves[w][name][10:30] or [np.nan])) for w in curves}
        params = sum(p.numel() for p in model.parameters())
        gflops = flops(model) / 1e9
        rows.append([name, params, round(gflops, 3), round(float(med), 1), round(float(q3 - q1), 1),
                     round(float(med) / base / 1e3, 3), round(early["image"], 3),
                     round(late["image"], 3), round(early["trained"], 3),
                     round(late["trained"], 3)])
        raw[name] = {"params": params, "gflops_forward_100_maps": gflops,
                     "fit_step_cpu_ms": t.tolist(),
                     "fit_step_wall_ms": (np.array(wall_times[name]) * 1e3).tolist(), "agreement": {w: curves[w][name] for w in curves}}
    columns = ["architecture", "params", "GFLOP fwd (100 maps)", "fit step CPU ms (median)",
               "IQR ms", "step time / default", "agreement image (it 11-30)",
               f"agreement image (last 20 of {args.iterations})",
               "agreement trained (it 11-30)", f"agreement trained (last 20 of {args.iterations})"]
    result = {"method": __doc__.split("Method\n------\n", 1)[1].strip(),
              "table": {"columns": columns, "rows": rows}, "machine": machine,
              "args": {**vars(args), "out": str(args.out)}, "seconds": round(time.time() - started, 1), "raw": raw}
    h.atomic_write(args.out / f"{stem}.json", json.dumps(result, indent=1))

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, w in zip(axes[:2], curves):
        for name in ARCHITECTURES:
            c = np.convolve(curves[w][name], np.ones(5) / 5, mode="valid")
            ax.plot(2 * np.arange(5, len(c) + 5), c, label=name)
        ax.set(xlabel="fit steps (2 per iteration)", ylabel="agreement on fresh samples",
               title=f"map: {w} (moving mean of 5)")
    axes[0].legend(fontsize=7)
    for row in rows:
        axes[2].scatter(row[3], row[9])
        axes[2].annotate(row[0], (row[3], row[9]), fontsize=7)
    axes[2].set(xscale="log", xlabel="fit step on 100 maps [CPU ms], 1 thread",
                ylabel="agreement (trained map, last 20)", title="cost against quality")
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=110)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
