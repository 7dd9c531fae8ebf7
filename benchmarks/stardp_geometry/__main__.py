"""Draw the geometry figure of the stardp docs page: ``docs/_static/stardp_geometry.png``.

A synthetic object-probability map (a soft, noisy ellipse), the star pattern around a centre
inside it, the warped map with the DP's indices, the radial-difference cost, and the soft DP's
marginals. Deterministic (fixed seed); runs in a few seconds:
``python -m benchmarks.stardp_geometry``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks import _harness as h
from diffbypass_stardp import (
    StarDP,
    contour_points,
    dp_solve,
    mask_to_indices,
    radial_difference,
    soft_dp,
    star_points,
    warp,
)

OUT = Path(__file__).resolve().parents[2] / "docs" / "_static" / "stardp_geometry.png"


def main() -> None:
    rng = np.random.default_rng(0)
    rows, cols = 150, 150
    yy, xx = np.mgrid[:rows, :cols].astype(np.float64)
    u, v = (xx - 78) * np.cos(0.5) + (yy - 72) * np.sin(0.5), -(xx - 78) * np.sin(0.5) + (
        yy - 72) * np.cos(0.5)
    radius = np.sqrt((u / 34) ** 2 + (v / 29) ** 2)  # 1 on the ellipse
    mask = radius <= 1
    prob = 1 / (1 + np.exp(60 * (radius - 1))) + 0.1 * rng.standard_normal((rows, cols))
    prob = np.clip(prob, 0, 1).astype(np.float32)  # like a network's object probability

    centre = torch.tensor([[76.0, 71.0]])
    points = star_points(centre)  # thesis defaults: N = 25, M = R = 65
    g = warp(torch.from_numpy(prob)[None], points)
    cost = radial_difference(g)
    raw = dp_solve(cost, 1)
    smooth = StarDP(output="float")(g)
    truth = mask_to_indices(torch.from_numpy(mask)[None], points)
    soft = soft_dp(cost.double(), 1, temperature=0.3)

    fig, axes = h.pyplot().subplots(1, 4, figsize=(17, 4.3))
    ax = axes[0]
    ax.imshow(prob, cmap="gray")
    pts = points[0].numpy()
    for n in range(pts.shape[0]):
        ax.plot(pts[n, :, 0], pts[n, :, 1], color="tab:blue", lw=0.5, alpha=0.6)
    ax.plot(pts[0, :, 0], pts[0, :, 1], color="tab:orange", lw=1.5, label="line 0")
    for idx, color, label in [(truth, "tab:green", "mask_to_indices (truth)"),
                              (smooth, "tab:red", "StarDP (smoothed)")]:
        poly = contour_points(idx, points)[0].numpy()
        poly = np.vstack([poly, poly[:1]])
        ax.plot(poly[:, 0], poly[:, 1], color=color, lw=1.5, label=label)
    ax.plot(*centre[0].numpy(), "y+", ms=10, mew=2)
    ax.set(title="map, star pattern (N=25, M=R=65), contours", xlim=(0, cols), ylim=(rows, 0))
    ax.legend(fontsize=7, loc="lower left")

    lines = np.arange(25)
    ax = axes[1]
    ax.imshow(g[0].numpy().T, cmap="gray", aspect="auto", origin="lower")
    ax.plot(lines, raw[0].numpy(), "c.", label="dp_solve (delta=1)")
    ax.plot(lines, smooth[0].numpy(), "r-", label="smoothed (width 7)")
    ax.plot(lines, truth[0].numpy(), "g--", lw=1, label="truth")
    ax.set(title="warped map g[n, i]", xlabel="line n", ylabel="point i", ylim=(10, 55))
    ax.legend(fontsize=7)

    ax = axes[2]
    im = ax.imshow(cost[0].numpy().T, cmap="RdBu_r", aspect="auto", origin="lower", vmin=-1.2,
                   vmax=1.2)
    ax.plot(lines, raw[0].numpy(), "k.", ms=4)
    ax.set(title="cost = radial_difference(g)", xlabel="line n", ylabel="point i", ylim=(10, 55))
    fig.colorbar(im, ax=ax, fraction=0.05)

    ax = axes[3]
    ax.imshow(soft.marginals[0].numpy().T, cmap="magma", aspect="auto", origin="lower")
    ax.plot(lines, soft.indices[0].numpy(), "c-", label="expected index")
    ax.set(title="soft_dp marginals (temperature 0.3)", xlabel="line n", ylabel="point i",
           ylim=(10, 55))
    ax.legend(fontsize=7)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    h.save(fig, OUT, dpi=90)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
