"""Figures of the volume results: a montage of the slices with contours, and a Bland–Altman plot.

Both draw on a :class:`matplotlib.figure.Figure` (the Agg canvas; no display and no pyplot
state) and are written atomically (:func:`lvseg.rundir.atomic_write_with`): a link at the
target path is replaced, never written through.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from lvseg.rundir import atomic_write_with

__all__ = ["bland_altman_figure", "montage_figure"]


def montage_figure(path: str | os.PathLike[str], images: np.ndarray, masks: np.ndarray, *,
                   title: str = "", columns: int | None = None,
                   truth: np.ndarray | None = None) -> None:
    """Write a PNG with one panel per slice: the image in grey, the predicted LV contour in red.

    Args:
        path: the PNG file.
        images: slices :math:`(Z, H, W)` of one frame.
        masks: LV masks :math:`(Z, H, W)`.
        title: figure title (the input file and frame).
        columns: panels per row (default: about square).
        truth: optional true masks :math:`(Z, H, W)`, drawn in green.

    Raises:
        ValueError: if the shapes differ or are not 3-D.
    """
    from matplotlib.figure import Figure

    images, masks = np.asarray(images), np.asarray(masks, dtype=bool)
    if images.ndim != 3 or masks.shape != images.shape or (
            truth is not None and np.shape(truth) != images.shape):
        raise ValueError(f"images, masks (and truth) must be (Z, H, W) of one shape; got "
                         f"{images.shape}, {masks.shape}"
                         + ("" if truth is None else f", {np.shape(truth)}"))
    n = images.shape[0]
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.2 * cols, 2.2 * rows + 0.4), dpi=100)
    for z in range(rows * cols):
        ax = fig.add_subplot(rows, cols, z + 1)
        ax.set_axis_off()
        if z >= n:
            continue
        ax.imshow(images[z], cmap="gray", interpolation="nearest")
        if truth is not None and np.any(truth[z]):
            ax.contour(np.asarray(truth[z], float), levels=[0.5], colors="lime", linewidths=0.8)
        if masks[z].any():
            ax.contour(masks[z].astype(float), levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(f"slice {z}" + ("" if masks[z].any() else " (no LV)"), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png"))


def bland_altman_figure(path: str | os.PathLike[str], predicted: Sequence[float],
                        true: Sequence[float], *, quantity: str = "EF (%)",
                        title: str = "") -> None:
    """Write a Bland–Altman PNG: difference (predicted − true) against the mean of the pair.

    Lines at the bias (mean difference) and at bias :math:`\\pm` 1.96 s.d. (the limits of
    agreement, ``ef_loa`` of :func:`lvseg.volumes.summarize_cases`). Pairs with a ``nan`` are
    left out and counted in the title.

    Raises:
        ValueError: if the sequences differ in length.
    """
    from matplotlib.figure import Figure

    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"predicted and true must be paired 1-D sequences; got {p.shape} and "
                         f"{t.shape}")
    keep = np.isfinite(p) & np.isfinite(t)
    p, t, dropped = p[keep], t[keep], int((~keep).sum())
    fig = Figure(figsize=(5.0, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    diff, mean = p - t, (p + t) / 2
    ax.scatter(mean, diff, s=14, color="tab:blue")
    if diff.size:
        bias = float(diff.mean())
        ax.axhline(bias, color="black", label=f"bias {bias:+.2f}")
        if diff.size > 1:
            loa = 1.96 * float(diff.std(ddof=1))
            for sign in (-1, 1):
                ax.axhline(bias + sign * loa, color="gray", linestyle="--")
            ax.plot([], [], color="gray", linestyle="--", label=f"±1.96 s.d. ({loa:.2f})")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"mean of predicted and true {quantity}")
    ax.set_ylabel(f"predicted − true {quantity}")
    ax.set_title((title or "Bland–Altman") + (f" ({dropped} undefined left out)" if dropped
                                              else ""), fontsize=9)
    fig.tight_layout()
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
