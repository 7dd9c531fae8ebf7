"""Figures (matplotlib, Agg backend): the pipeline overlay of thesis fig. 4.3, training curves,
and the overlay of a prediction.

The pipeline overlay of a DP method has six panels: (a) input image with the star centre,
(b) output map with the star pattern, (c) warped map :math:`g` (lines x points), (d) the DP path
(smoothed indices) and the true indices on the warped map, (e) predicted contour and (f) true
contour on the image, both inside the star's square (dashed), where the metrics are computed.
``unet`` has no star: panels (a), (b) the probability map, (e) and (f).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lvseg.metrics import star_square  # noqa: E402
from lvseg.star import StarConfig  # noqa: E402
from lvseg.segment import Segmentation  # noqa: E402

__all__ = ["pipeline_figure", "prediction_figure", "training_curves"]

_PRED, _TRUE = "#ff3b30", "#34c759"


def _outline(ax: Any, mask: np.ndarray, color: str, label: str | None = None) -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=[color], linewidths=1.2)
    if label:
        ax.plot([], [], color=color, label=label)


def _square(ax: Any, center: np.ndarray, radius: float, shape: tuple[int, int]) -> None:
    rows, cols = star_square(center, radius, shape)
    ax.add_patch(plt.Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start,
                               rows.stop - rows.start, fill=False, ls="--", lw=0.8, ec="w"))


def pipeline_figure(
    path: str | os.PathLike[str],
    *,
    image: np.ndarray,
    true_mask: np.ndarray,
    seg: Segmentation,
    k: int,
    star: StarConfig,
    center: np.ndarray | None = None,
    title: str = "",
    dpi: int = 90,
) -> None:
    """Write the overlay of item ``k`` of ``seg`` (see the module docstring) to ``path``.

    ``center`` (x, y) is the star centre; DP methods recover it from the star points.
    """
    image, true_mask = np.asarray(image), np.asarray(true_mask, dtype=bool)
    pred = seg.masks[k].numpy()
    output_map = seg.output_map[k].numpy()
    dp = seg.points is not None
    fig, axes = plt.subplots(2 if dp else 1, 3 if dp else 4, figsize=(11, 7.4) if dp else (14, 4.1))
    axes = np.asarray(axes).reshape(-1)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    if dp:
        points = seg.points[k].numpy()
        center = points[:, 0] - (points[:, 1] - points[:, 0])  # one step before the first point
        center = center.mean(axis=0)
        a, b, c, d, e, f = axes
    else:
        a, b, e, f = axes
    a.imshow(image, cmap="gray")
    a.set_title("(a) input image")
    if center is not None:
        a.plot(*center, "y+", ms=10)
    b.imshow(output_map, cmap="magma")
    b.set_title("(b) output map + star" if dp else "(b) foreground probability")
    if dp:
        for line in points:
            b.plot(line[:, 0], line[:, 1], color="c", lw=0.5, alpha=0.8)
        b.set_xlim(-0.5, image.shape[1] - 0.5), b.set_ylim(image.shape[0] - 0.5, -0.5)
        warped = seg.warped[k].numpy()
        c.imshow(warped, cmap="magma", aspect="auto")
        c.set_title("(c) warped map g (line x point)")
        d.imshow(warped, cmap="gray", aspect="auto")
        n = np.arange(len(warped))
        true_idx = _true_indices(true_mask, points)
        d.plot(true_idx, n, "o", color=_TRUE, ms=3, label="true")
        d.plot(seg.indices[k].numpy(), n, "-", color=_PRED, lw=1.5, label="DP (smoothed)")
        d.legend(loc="lower right", fontsize=7)
        d.set_title("(d) DP path on the warped map")
        d.set_xlabel("point on line"), d.set_ylabel("line")
    for ax, mask, color, label in ((e, pred, _PRED, "(e) prediction"),
                                   (f, true_mask, _TRUE, "(f) ground truth")):
        ax.imshow(image, cmap="gray")
        ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn" if color == _PRED else "summer",
                  alpha=0.25, vmin=0, vmax=1)
        _outline(ax, mask, color)
        if dp and ax is e:
            contour = seg.contours[k].numpy()
            closed = np.vstack([contour, contour[:1]])
            ax.plot(closed[:, 0], closed[:, 1], ".-", color=_PRED, lw=0.8, ms=2)
        if center is not None:
            _square(ax, center, star.radius, image.shape)
        ax.set_title(label)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _true_indices(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    from diffbypass_stardp import mask_to_indices

    return mask_to_indices(torch.from_numpy(mask)[None], torch.from_numpy(points)[None])[0].numpy()


def training_curves(metrics: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Plot the training loss and the validation Dice of a run's ``metrics.jsonl``."""
    events = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    steps = [e for e in events if e["event"] == "step"]
    vals = [e for e in events if e["event"] == "validation"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot([e["iteration"] for e in steps], [e["loss"] for e in steps], lw=0.8)
    left.set_xlabel("iteration"), left.set_ylabel("training loss"), left.set_yscale("log")
    agree = [(e["iteration"], e["agreement"]) for e in steps if "agreement" in e]
    if agree:
        twin = left.twinx()
        twin.plot(*zip(*agree), color="C2", lw=0.6, alpha=0.7)
        twin.set_ylabel("surrogate agreement", color="C2"), twin.set_ylim(0, 1)
    right.plot([e["iteration"] for e in vals], [e["dice"] for e in vals], "o-", ms=3)
    right.set_xlabel("iteration"), right.set_ylabel("validation Dice"), right.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def prediction_figure(
    path: str | os.PathLike[str],
    image: np.ndarray,
    mask: np.ndarray,
    center: tuple[float, float],
    contour: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Overlay of a predicted mask (and DP contour) on an input slice, with the star centre."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(image, cmap="gray")
    ax.imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.25, vmin=0, vmax=1)
    _outline(ax, mask, _PRED)
    if contour is not None:
        closed = np.vstack([contour, contour[:1]])
        ax.plot(closed[:, 0], closed[:, 1], ".-", color=_PRED, lw=0.8, ms=2)
    ax.plot(*center, "y+", ms=10)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
