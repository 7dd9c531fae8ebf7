r"""The ACDC challenge's protocol: 3-D Dice and Hausdorff distance, EDV/ESV/EF agreement.

Beside the thesis protocol (2-D, inside the star's square: :mod:`lvseg.metrics`), this scores
what a user gets (Bernard et al. 2018): per patient and phase (ED, ES), the **3-D** Dice and
Hausdorff distance between the predicted and true LV masks over the **full image**, in mm with
the anisotropic voxel size ``(dz, dy, dx)``, and the predicted against the true EDV, ESV and EF.

Surface distances follow :mod:`lvseg.surface` in 3-D: the boundary is the mask voxels with a
6-neighbour outside the mask or the array, distances run between voxel centres, and the empty
conventions are the same (both empty: Dice 1, HD 0; one empty: Dice 0, HD ``nan``, counted by
:func:`summarize_cases`). On non-empty masks this equals ``monai.metrics.compute_dice`` and
``compute_hausdorff_distance`` with ``spacing=(dz, dy, dx)`` (tested).

:func:`summarize_cases` gives the JSON keys of issue #19: ``dice_ed``, ``dice_es``, ``hd_ed_mm``,
``hd_es_mm`` (means), ``ef_r``, ``edv_r``, ``esv_r`` (Pearson correlations), ``ef_bias`` (mean of
predicted minus true EF, in EF points), ``ef_loa`` (1.96 standard deviations of that difference,
the half-width of the Bland–Altman limits of agreement) and ``centre``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lvseg.data.types import positive_sizes
from lvseg.surface import hausdorff_nd
from lvseg.volumes.cardiac import ejection_fraction, lv_volume_ml

__all__ = ["PHASES", "dice_3d", "hausdorff_3d", "pearson", "score_case", "summarize_cases"]

#: The phases scored, with the names used in keys (``dice_ed``) and rows (``"ED"``).
PHASES = ("ED", "ES")


def _masks(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred).astype(bool), np.asarray(true).astype(bool)
    if p.shape != t.shape or p.ndim != 3:
        raise ValueError(f"pred and true must be 3-D masks (Z, H, W) of one shape; got "
                         f"{p.shape} and {t.shape}")
    return p, t


def dice_3d(pred: Any, true: Any) -> float:
    """Dice :math:`2|P \\cap T| / (|P| + |T|)` of two 3-D masks; 1.0 when both are empty.

    Example:
        >>> a = np.zeros((2, 4, 4), bool); a[0] = True
        >>> dice_3d(a, np.ones((2, 4, 4), bool))
        0.6666666666666666
    """
    p, t = _masks(pred, true)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def hausdorff_3d(pred: Any, true: Any, spacing: Sequence[float]) -> float:
    """Symmetric Hausdorff distance (mm) between 3-D mask boundaries, voxel size ``(dz, dy, dx)``.

    Returns 0.0 when both masks are empty and ``nan`` when exactly one is (module docstring).

    Example:
        >>> a = np.zeros((3, 5, 5), bool); a[1, 2, 2] = True
        >>> b = np.zeros((3, 5, 5), bool); b[2, 2, 2] = True
        >>> hausdorff_3d(a, b, (10.0, 1.0, 1.0))
        10.0
    """
    p, t = _masks(pred, true)
    sampling = positive_sizes(spacing, 3)
    if sampling is None:
        raise ValueError(f"spacing must be (dz, dy, dx), three positive mm; got {spacing!r}")
    return hausdorff_nd(p, t, sampling)


def score_case(pred: np.ndarray, true: np.ndarray, spacing: Sequence[float],
               patient_id: str, frames: Sequence[int] = (0, 1)) -> dict[str, Any]:
    """Score one patient: 3-D Dice and HD at ED and ES, predicted and true EDV/ESV/EF.

    Args:
        pred: predicted LV masks :math:`(2, Z, H, W)`, ED then ES.
        true: true LV masks of the same shape.
        spacing: voxel size ``(dz, dy, dx)`` mm.
        patient_id: named in the result.
        frames: the frame numbers of ED and ES (for the rows).

    Returns:
        ``{"patient", "frames": [{"phase", "frame", "dice", "hd_mm", "volume_ml",
        "true_volume_ml"}, ...], "edv_ml", "esv_ml", "ef", "true_edv_ml", "true_esv_ml",
        "true_ef"}``; EF in percent (``nan`` when an EDV is 0).

    Example:
        >>> m = np.zeros((2, 2, 8, 8), bool); m[0, :, 1:7, 1:7] = True; m[1, :, 2:6, 2:6] = True
        >>> s = score_case(m, m, (10.0, 1.0, 1.0), "p1")
        >>> s["frames"][0]["dice"], s["edv_ml"], s["esv_ml"], round(s["ef"], 2)
        (1.0, 0.72, 0.32, 55.56)
    """
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    if pred.shape != true.shape or pred.ndim != 4 or pred.shape[0] != 2:
        raise ValueError(f"{patient_id}: pred and true must be (2, Z, H, W) masks (ED, ES); "
                         f"got {pred.shape} and {true.shape}")
    volumes = lv_volume_ml(pred, spacing)
    true_volumes = lv_volume_ml(true, spacing)
    rows = [{"phase": phase, "frame": int(frame), "dice": dice_3d(pred[i], true[i]),
             "hd_mm": hausdorff_3d(pred[i], true[i], spacing), "volume_ml": float(volumes[i]),
             "true_volume_ml": float(true_volumes[i])}
            for i, (phase, frame) in enumerate(zip(PHASES, frames))]
    return {"patient": str(patient_id), "frames": rows,
            "edv_ml": float(volumes[0]), "esv_ml": float(volumes[1]),
            "ef": ejection_fraction(volumes[0], volumes[1]),
            "true_edv_ml": float(true_volumes[0]), "true_esv_ml": float(true_volumes[1]),
            "true_ef": ejection_fraction(true_volumes[0], true_volumes[1])}


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of paired values; ``nan`` with fewer than 2 pairs or a constant side.

    Example:
        >>> pearson([1, 2, 3], [2, 4, 7])
        0.9933992677987828
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be paired 1-D sequences; got {a.shape} and {b.shape}")
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def summarize_cases(cases: Sequence[dict[str, Any]], centre: str = "predicted"
                    ) -> dict[str, Any]:
    """The protocol's summary over patients scored by :func:`score_case`.

    Means skip undefined values (``nan``: an HD with one empty mask, an EF with EDV 0) and
    count them under ``n_undefined``; ``ef_loa`` uses the sample standard deviation
    (``ddof=1``).

    Args:
        cases: one :func:`score_case` result per patient.
        centre: how the star's centre was obtained (``"predicted"``, ``"ground truth"``, or
            ``"none"`` for a U-Net alone).

    Returns:
        The keys of the module docstring, plus ``n_patients``, ``edv_bias_ml``, ``esv_bias_ml``
        and ``n_undefined``.

    Raises:
        ValueError: if ``cases`` is empty.
    """
    if not cases:
        raise ValueError("cases must hold at least one scored patient; got none")
    summary: dict[str, Any] = {"centre": str(centre), "n_patients": len(cases)}
    undefined: dict[str, int] = {}

    def mean(key: str, values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        if len(finite) < len(values):
            undefined[key] = len(values) - len(finite)
        return float(np.mean(finite)) if finite else math.nan

    for i, phase in enumerate(PHASES):
        low = phase.lower()
        summary[f"dice_{low}"] = mean(f"dice_{low}", [c["frames"][i]["dice"] for c in cases])
        summary[f"hd_{low}_mm"] = mean(f"hd_{low}_mm", [c["frames"][i]["hd_mm"] for c in cases])
    pairs = [(c["ef"], c["true_ef"]) for c in cases if math.isfinite(c["ef"])
             and math.isfinite(c["true_ef"])]
    if len(pairs) < len(cases):
        undefined["ef"] = len(cases) - len(pairs)
    differences = np.array([p - t for p, t in pairs], dtype=np.float64)
    summary["ef_r"] = pearson([p for p, _ in pairs], [t for _, t in pairs])
    summary["ef_bias"] = float(differences.mean()) if pairs else math.nan
    summary["ef_loa"] = 1.96 * float(differences.std(ddof=1)) if len(pairs) > 1 else math.nan
    for key in ("edv", "esv"):
        pred = [c[f"{key}_ml"] for c in cases]
        true = [c[f"true_{key}_ml"] for c in cases]
        summary[f"{key}_r"] = pearson(pred, true)
        summary[f"{key}_bias_ml"] = float(np.mean(np.subtract(pred, true)))
    summary["n_undefined"] = undefined
    return summary
