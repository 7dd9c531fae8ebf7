r"""Segmentation metrics: Dice, Hausdorff distance (HD, HD95) and ASSD, inside the star's square.

Evaluation protocol (thesis §5.3): EDPCNN outputs one contour inside its star pattern, while a
U-Net may output components anywhere; to compare them fairly, every metric is computed inside
the square that tightly holds the star (:func:`star_square`): centre :math:`\pm` radius, clipped
to the image. Whatever is predicted outside the square is ignored.

The per-mask distances (HD, HD95, ASSD), their definitions, the empty-mask conventions and
their relation to MONAI are in :mod:`lvseg.surface`; Dice is here.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from lvseg.surface import as_numpy, assd, hausdorff_distance, hd95, mask_pair

__all__ = ["dice", "evaluate_batch", "evaluate_masks", "square_dice", "star_square", "summarize"]


def star_square(
    center: Sequence[float], radius: float, shape: tuple[int, int]
) -> tuple[slice, slice]:
    r"""The square of pixels that tightly holds a star pattern, clipped to the image.

    Rows :math:`[\mathrm{round}(y - r), \mathrm{round}(y + r)]` and columns
    :math:`[\mathrm{round}(x - r), \mathrm{round}(x + r)]`, both inclusive (``round`` halves up):
    every pixel a nearest-neighbour lookup of a star point can reach.

    Args:
        center: star centre :math:`(x, y)` = (column, row) in pixels.
        radius: star radius :math:`r > 0` in pixels.
        shape: image shape ``(H, W)``.

    Returns:
        ``(rows, cols)`` slices; index an image with ``image[rows, cols]``.

    Raises:
        ValueError: if the radius is not positive or the square misses the image.

    Example:
        >>> star_square((10.0, 5.0), 3.0, (64, 64))
        (slice(2, 9, None), slice(7, 14, None))
        >>> star_square((1.0, 62.0), 65.0, (64, 64))
        (slice(0, 64, None), slice(0, 64, None))
    """
    x, y = float(center[0]), float(center[1])
    r = float(radius)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"radius must be a positive number of pixels; got {radius!r}")
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"center must be finite (x, y); got {tuple(center)!r}")
    height, width = int(shape[0]), int(shape[1])
    r0, r1 = max(math.floor(y - r + 0.5), 0), min(math.floor(y + r + 0.5) + 1, height)
    c0, c1 = max(math.floor(x - r + 0.5), 0), min(math.floor(x + r + 0.5) + 1, width)
    if r0 >= r1 or c0 >= c1:
        raise ValueError(
            f"the star square around center {(x, y)} with radius {r} misses the {height}x{width} "
            "image"
        )
    return slice(r0, r1), slice(c0, c1)


def dice(pred: Any, true: Any) -> float:
    r"""Dice overlap :math:`2|P \cap T| / (|P| + |T|)`; 1.0 when both masks are empty.

    Example:
        >>> dice(np.array([[1, 1, 0, 0]]), np.array([[0, 1, 1, 0]]))
        0.5
    """
    p, t = mask_pair(pred, true)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def _batch(preds: Any, trues: Any, centers: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(K, H, W)`` predicted and true masks and ``(K, 2)`` centres as arrays, checked."""
    preds, trues = as_numpy(preds), as_numpy(trues)
    centers = np.asarray(as_numpy(centers), dtype=np.float64)
    if preds.ndim != 3 or preds.shape != trues.shape:
        raise ValueError(
            f"preds and trues must have the same shape (K, H, W); got {preds.shape} and "
            f"{trues.shape}"
        )
    if centers.shape != (preds.shape[0], 2):
        raise ValueError(f"centers must have shape ({preds.shape[0]}, 2); got {centers.shape}")
    return preds, trues, centers


def square_dice(preds: Any, trues: Any, centers: Any, radius: float) -> list[float]:
    r"""Dice of each of :math:`K` slices inside its star's square: the ``"dice"`` of
    :func:`evaluate_batch` without the surface distances (what model selection needs).

    Example:
        >>> t = np.zeros((1, 64, 64), bool); t[0, 20:40, 20:40] = True
        >>> p = t.copy(); p[0, 0:5, 0:5] = True          # outside the star's square
        >>> square_dice(p, t, np.array([[29.5, 29.5]]), 15)
        [1.0]
    """
    preds, trues, centers = _batch(preds, trues, centers)
    out = []
    for k in range(len(preds)):
        rows, cols = star_square(centers[k], radius, preds[k].shape)
        out.append(dice(preds[k][rows, cols], trues[k][rows, cols]))
    return out


def evaluate_masks(
    pred: Any,
    true: Any,
    spacing: float | Sequence[float],
    center: Sequence[float],
    radius: float,
) -> dict[str, Any]:
    r"""Dice, HD, HD95 and ASSD of one prediction inside the star's square (thesis protocol).

    Args:
        pred: predicted mask :math:`(H, W)` (numpy or CPU tensor; nonzero = LV).
        true: ground-truth mask :math:`(H, W)`.
        spacing: pixel size in mm, one number or ``(row_mm, col_mm)``.
        center: star centre :math:`(x, y)` in pixels.
        radius: star radius in pixels (e.g. 65).

    Returns:
        ``{"dice": float, "hd": float, "hd95": float, "assd": float, "pred_empty": bool,
        "true_empty": bool}`` with the distances in mm; the emptiness flags refer to the masks
        inside the square.

    Example:
        >>> t = np.zeros((64, 64), bool); t[20:40, 20:40] = True
        >>> p = t.copy(); p[0:5, 0:5] = True          # a blob outside the star's square
        >>> evaluate_masks(p, t, 1.5, center=(29.5, 29.5), radius=15)["dice"]
        1.0
    """
    p, t = mask_pair(pred, true)
    rows, cols = star_square(center, radius, p.shape)
    p, t = p[rows, cols], t[rows, cols]
    return {
        "dice": dice(p, t),
        "hd": hausdorff_distance(p, t, spacing),
        "hd95": hd95(p, t, spacing),
        "assd": assd(p, t, spacing),
        "pred_empty": not p.any(),
        "true_empty": not t.any(),
    }


def evaluate_batch(
    preds: Any,
    trues: Any,
    spacing: float | Sequence[float],
    centers: Any,
    radius: float | Sequence[float],
) -> list[dict[str, Any]]:
    r""":func:`evaluate_masks` for each of :math:`K` slices.

    Args:
        preds: predicted masks :math:`(K, H, W)`.
        trues: ground-truth masks :math:`(K, H, W)`.
        spacing: pixel size in mm, shared by all slices.
        centers: star centres :math:`(K, 2)` as :math:`(x, y)`.
        radius: star radius in pixels, one for all or one per slice :math:`(K,)`.

    Returns:
        One result dict per slice.
    """
    preds, trues, centers = _batch(preds, trues, centers)
    radii = np.broadcast_to(np.asarray(as_numpy(radius), dtype=np.float64), (preds.shape[0],))
    return [
        evaluate_masks(preds[k], trues[k], spacing, centers[k], radii[k])
        for k in range(preds.shape[0])
    ]


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, float | int]:
    """Mean and standard deviation of Dice, HD, HD95 and ASSD over slices.

    Dice averages over all slices (an empty prediction scores 0); HD, HD95 and ASSD average over
    the slices where they are defined, and ``n_undefined`` counts the others (by HD), so a method
    that predicts nothing cannot look better.

    Returns:
        ``{"n", "dice_mean", "dice_std", "hd_mean", "hd_std", "hd95_mean", "hd95_std",
        "assd_mean", "assd_std", "n_undefined"}``; means are ``nan`` when there is nothing to
        average (rows without ``"hd95"`` count as undefined for it).

    Example:
        >>> summarize([{"dice": 0.9, "hd": 4.0, "assd": 1.0},
        ...            {"dice": 0.0, "hd": float("nan"), "assd": float("nan")}])["hd_mean"]
        4.0
    """
    rows = list(results)
    out: dict[str, float | int] = {"n": len(rows)}
    for key in ("dice", "hd", "hd95", "assd"):
        values = np.array([float(r.get(key, math.nan)) for r in rows], dtype=np.float64)
        values = values[~np.isnan(values)]
        out[f"{key}_mean"] = float(values.mean()) if values.size else math.nan
        out[f"{key}_std"] = float(values.std()) if values.size else math.nan
    out["n_undefined"] = int(sum(math.isnan(float(r["hd"])) for r in rows))
    return out
