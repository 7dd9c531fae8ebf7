r"""Segmentation metrics: Dice, Hausdorff distance (HD, HD95) and ASSD, inside the star's square.

Evaluation protocol (thesis §5.3): EDPCNN outputs one contour inside its star pattern, while a
U-Net may output components anywhere; to compare them fairly, every metric is computed inside
the square that tightly holds the star (:func:`star_square`): centre :math:`\pm` radius, clipped
to the image. Whatever is predicted outside the square is ignored.

Surface distances are measured between mask *boundaries*: the mask pixels with a 4-neighbour
outside the mask (pixels on the edge of the evaluated region count as boundary), at their pixel
centres, in millimetres using the pixel spacing. With :math:`d(a, B)` the distance from point
:math:`a` to the nearest point of :math:`B`, :math:`P, T` the boundaries of prediction and
truth, and :math:`Q_{95}` the 95th percentile with linear interpolation (``numpy.percentile``),

.. math::

    \mathrm{HD} = \max\{\max_{p \in P} d(p, T),\ \max_{t \in T} d(t, P)\}, \qquad
    \mathrm{HD95} = \max\{Q_{95}\, d(P, T),\ Q_{95}\, d(T, P)\},

.. math::

    \mathrm{ASSD} = \frac{\sum_{p \in P} d(p, T) + \sum_{t \in T} d(t, P)}{|P| + |T|}.

Empty masks, by convention:

==========================  ======  ===============  ===========
case                        Dice    HD, HD95         ASSD
==========================  ======  ===============  ===========
both empty                  1.0     0.0              0.0
one empty                   0.0     ``nan``          ``nan``
==========================  ======  ===============  ===========

:func:`evaluate_masks` also returns flags ``pred_empty`` and ``true_empty``, and
:func:`summarize` averages HD, HD95 and ASSD over the defined cases while counting the
undefined ones.

Relation to MONAI (tested against MONAI 1.6 in ``tests/lv_segmentation``): on non-empty masks
:func:`dice`, :func:`hausdorff_distance`, :func:`hd95` and :func:`assd` of the cropped masks
equal ``monai.metrics.compute_dice``, ``compute_hausdorff_distance`` (``percentile=None`` and
``95``) and ``compute_average_surface_distance(symmetric=True)`` with
``include_background=True`` and ``spacing=(row_mm, col_mm)``: MONAI's edges
(``binary_erosion(m) ^ m``, 4-connected, the array border counting as outside) are our boundary
pixels, its HD95 is the same maximum of the two directed percentiles, and MONAI computes in
float32, so values agree to float32 rounding (relative :math:`10^{-6}`; HD95 to
:math:`10^{-5}`, from MONAI's float32 percentile position). The differences are conventions:

- **Crop**: MONAI sees whatever array it is given; :func:`evaluate_masks` gives it the star's
  square, whose edge is the array border (a mask cut by the square gets boundary pixels there).
- **Empty masks**: MONAI returns Dice ``nan`` for an empty truth (``ignore_empty=True``, its
  default) or 1.0 with ``ignore_empty=False`` when both are empty; HD and ASSD ``nan`` when both
  are empty and ``inf`` when one is; HD95 ``nan`` when either is. We return 1.0 / 0.0 / 0.0 / 0.0
  (a perfect prediction of nothing) and ``nan`` for HD, HD95 and ASSD when exactly one is empty
  (counted by :func:`summarize`, never averaged as a number).
- **HD95 elsewhere**: MedPy's ``hd95`` takes the 95th percentile of the *union* of both directed
  distance sets (typically smaller than ours); ours follows MONAI, as does DeepMind's
  surface-distance ``compute_robust_hausdorff`` up to its surface-area weights and percentile
  rule.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "assd",
    "boundary",
    "dice",
    "evaluate_batch",
    "evaluate_masks",
    "hausdorff_distance",
    "hd95",
    "star_square",
    "summarize",
    "surface_distances",
]

_CROSS = ndimage.generate_binary_structure(2, 1)


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
    p, t = _pair(pred, true)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def boundary(mask: Any) -> np.ndarray:
    """Boundary pixels: mask pixels with a 4-neighbour outside the mask or the array.

    Example:
        >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
        >>> boundary(m).astype(int)[1:4, 1:4]
        array([[1, 1, 1],
               [1, 0, 1],
               [1, 1, 1]])
    """
    m = _mask(mask, "mask")
    return m & ~ndimage.binary_erosion(m, structure=_CROSS, border_value=0)


def surface_distances(
    pred: Any, true: Any, spacing: float | Sequence[float] = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each prediction boundary pixel to the truth boundary, and back.

    Args:
        pred: predicted mask :math:`(H, W)`.
        true: ground-truth mask :math:`(H, W)`.
        spacing: pixel size in mm, one number or ``(row_mm, col_mm)``.

    Returns:
        ``(pred_to_true, true_to_pred)``, float64 arrays of the boundary sizes; both empty if
        either mask is empty (the distances are undefined).
    """
    p, t = _pair(pred, true)
    sampling = _spacing(spacing)
    bp, bt = boundary(p), boundary(t)
    if not bp.any() or not bt.any():
        return np.zeros(0), np.zeros(0)
    to_true = ndimage.distance_transform_edt(~bt, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~bp, sampling=sampling)
    return to_true[bp], to_pred[bt]


def hausdorff_distance(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """Symmetric Hausdorff distance in mm between the mask boundaries (module docstring).

    Returns 0.0 if both masks are empty and ``nan`` if exactly one is.

    Example:
        >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
        >>> b = np.zeros((8, 8), bool); b[2:5, 2:6] = True
        >>> hausdorff_distance(a, b, spacing=(1.0, 2.0))
        2.0
    """
    return _from_distances(pred, true, spacing, lambda a, b: float(max(a.max(), b.max())))


def hd95(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """95th-percentile Hausdorff distance in mm: the larger directed 95th percentile.

    See the module docstring for the definition and its relation to MONAI and MedPy.

    Robust to a few outlying boundary pixels, unlike :func:`hausdorff_distance`. Returns 0.0 if
    both masks are empty and ``nan`` if exactly one is.

    Example:
        >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
        >>> b = np.zeros((8, 8), bool); b[2:5, 2:6] = True
        >>> hd95(a, b, spacing=(1.0, 2.0))
        2.0
    """
    return _from_distances(
        pred, true, spacing,
        lambda a, b: float(max(np.percentile(a, 95.0), np.percentile(b, 95.0))),
    )  # fmt: skip


def assd(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """Average symmetric surface distance in mm (module docstring).

    Returns 0.0 if both masks are empty and ``nan`` if exactly one is.
    """
    return _from_distances(
        pred, true, spacing, lambda a, b: float((a.sum() + b.sum()) / (a.size + b.size))
    )


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
    p, t = _pair(pred, true)
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
    preds, trues = _array(preds), _array(trues)
    centers = np.asarray(_array(centers), dtype=np.float64)
    if preds.ndim != 3 or preds.shape != trues.shape:
        raise ValueError(
            f"preds and trues must have the same shape (K, H, W); got {preds.shape} and "
            f"{trues.shape}"
        )
    if centers.shape != (preds.shape[0], 2):
        raise ValueError(f"centers must have shape ({preds.shape[0]}, 2); got {centers.shape}")
    radii = np.broadcast_to(np.asarray(_array(radius), dtype=np.float64), (preds.shape[0],))
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


def _from_distances(pred: Any, true: Any, spacing: Any, reduce: Any) -> float:
    p, t = _pair(pred, true)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return math.nan
    return reduce(*surface_distances(p, t, spacing))


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _mask(x: Any, name: str) -> np.ndarray:
    m = _array(x)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask (H, W); got shape {m.shape}")
    return m.astype(bool, copy=False)


def _pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _mask(pred, "pred"), _mask(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true must have the same shape; got {p.shape} and {t.shape}")
    return p, t


def _spacing(spacing: float | Sequence[float]) -> tuple[float, float]:
    try:
        values = np.asarray(spacing, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.size == 1:
        values = np.repeat(values, 2)
    if values.size != 2 or not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError(
            f"spacing must be a positive number or (row_mm, col_mm); got {spacing!r}"
        )
    return float(values[0]), float(values[1])
