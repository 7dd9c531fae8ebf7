"""Plausibility checks of one slice's result: each returns a warning naming the slice, or ``None``.

A slice is named by its frame and slice indices (:func:`where`), so a warning reads
``"frame 3, slice 7: ..."``, the checks across ED and ES included. The checks are pure functions of the result; :func:`check_slice`
runs all that apply. :func:`check_es_area` compares each slice's LV area (:func:`lv_area_mm2`)
across the ED and ES frames, where both are known, and :func:`check_es_stack_ends` the two ends
of the ES stack with the LV's contraction. None refuses a result: the warnings go to the user
and into the JSON.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lvseg.star import RIM_FRACTION, RIM_TOLERANCE, at_rim, lines_at_rim, mostly_at_rim

__all__ = ["ES_AREA_FACTOR", "ES_END_FACTOR", "MAX_AREA_MM2", "MIN_AREA_MM2", "RIM_FRACTION",
           "RIM_TOLERANCE", "at_rim", "check_area", "check_center_inside", "check_es_area",
           "check_es_stack_ends", "check_rim", "check_slice", "lines_at_rim", "lv_area_mm2",
           "where"]

#: Smallest plausible LV blood-pool area (mm²) of a slice with LV: a few pixels at the apex.
MIN_AREA_MM2 = 20.0
#: Largest plausible LV blood-pool area (mm²): beyond the most dilated ventricles at the base.
MAX_AREA_MM2 = 6000.0
#: Largest plausible ratio of a slice's LV area at ES to its area at ED. In systole the cavity
#: shrinks: on the ground truth of the 100 ACDC training patients (slices with LV at both
#: phases), 20 of 874 slices have an ES area above the ED area, 11 above 1.1 times it and 6
#: (0.7 %) above 1.25 times it.
ES_AREA_FACTOR = 1.25
#: Largest plausible contraction ratio of an end slice of the ES stack relative to the LV's: its
#: ES/ED area ratio over the median ES/ED ratio of the slices with LV at both phases
#: (:func:`check_es_stack_ends`). A false LV at a stack end at ES (the atrium or outflow tract at
#: the base, the apex wall) often keeps its ED size while the LV contracts. Chosen on the thesis'
#: training patients only (``benchmarks/lv_volumes/README.md``, "Stack ends at ES"): the best
#: ES Dice of 1.5 / 1.75 / 2 / 2.5 had the flagged slices been dropped, on four runs; on the
#: ground truth of the 80 training patients, 12 of 160 ES stack ends exceed it.
ES_END_FACTOR = 1.75


def where(frame: int, slice_index: int) -> str:
    """The name of a slice in warnings.

    Example:
        >>> where(3, 7)
        'frame 3, slice 7'
    """
    return f"frame {int(frame)}, slice {int(slice_index)}"


def lv_area_mm2(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray | float:
    """LV area in mm² of a mask ``(H, W)`` (a float), or of each slice of ``(..., H, W)``.

    The pixel count times ``dy * dx``: the area every check here uses.

    Args:
        mask: boolean LV mask (or 0/1 integers; any non-zero pixel counts).
        spacing: pixel size ``(dy, dx)`` in mm.

    Raises:
        ValueError: if ``mask`` has fewer than 2 dimensions.

    Example:
        >>> lv_area_mm2(np.ones((4, 4), bool), (1.5, 1.25))
        30.0
        >>> lv_area_mm2(np.ones((2, 3, 4, 4), bool), (1.0, 1.0)).shape
        (2, 3)
    """
    mask = np.asarray(mask)
    if mask.ndim < 2:
        raise ValueError(f"mask must have shape (H, W) or (..., H, W); got {mask.shape}")
    pixel = float(spacing[0]) * float(spacing[1])
    counts = np.count_nonzero(mask, axis=(-2, -1))
    return float(counts) * pixel if mask.ndim == 2 else counts.astype(np.float64) * pixel


def check_rim(radii: Sequence[float], star_radius: float, name: str, *,
              tolerance: float = RIM_TOLERANCE, fraction: float = RIM_FRACTION) -> str | None:
    """Warn when the contour lies at the star's radius on most lines (no edge found there).

    Args:
        radii: distance of the contour from the star's centre on each line (pixels).
        star_radius: the star's radius (pixels).
        name: the slice (:func:`where`).
        tolerance: a line is at the rim when its radius is at least ``tolerance * star_radius``.
        fraction: warn when more than this fraction of the lines are at the rim.

    Example:
        >>> print(check_rim([10, 65, 65, 65], 65.0, "frame 0, slice 2"))  # doctest: +ELLIPSIS
        frame 0, slice 2: the contour lies at the star radius on 3 of 4 lines (the LV edge ...)
        >>> check_rim([10, 12, 11, 65], 65.0, "x") is None
        True
    """
    radii = np.asarray(radii, dtype=np.float64).ravel()
    if radii.size == 0 or not (math.isfinite(star_radius) and star_radius > 0):
        raise ValueError(f"{name}: radii must be non-empty and star_radius > 0; got "
                         f"{radii.size} radii, star_radius {star_radius!r}")
    rim = int(lines_at_rim(radii, star_radius, tolerance=tolerance))
    if mostly_at_rim(rim, radii.size, fraction=fraction):
        return (f"{name}: the contour lies at the star radius on {rim} of {radii.size} lines "
                "(the LV edge was not found; a wrong centre or no LV?)")
    return None


def check_area(mask: np.ndarray, spacing: Sequence[float], name: str, *,
               low: float = MIN_AREA_MM2, high: float = MAX_AREA_MM2) -> str | None:
    """Warn when a non-empty mask's area (mm²) is below ``low`` or above ``high``.

    ``spacing`` is ``(dy, dx)`` in mm. An empty mask is "no LV", not a warning.

    Example:
        >>> m = np.zeros((64, 64), bool); m[:3, :3] = True
        >>> check_area(m, (1.0, 1.0), "frame 1, slice 9")
        'frame 1, slice 9: LV area 9 mm² is implausibly small (< 20 mm²)'
    """
    area = lv_area_mm2(mask, spacing)
    if area == 0:
        return None
    if area < low:
        return f"{name}: LV area {area:.3g} mm² is implausibly small (< {low:g} mm²)"
    if area > high:
        return f"{name}: LV area {area:.4g} mm² is implausibly large (> {high:g} mm²)"
    return None


def check_center_inside(mask: np.ndarray, center: Sequence[float], name: str) -> str | None:
    """Warn when the star's centre ``(x, y)`` (pixels) is not inside the predicted mask.

    A centre off the image or on a background pixel means the star was placed wrongly: the
    contour around it is not the LV's. An empty mask is "no LV", not a warning.

    Example:
        >>> m = np.zeros((8, 8), bool); m[2:5, 2:5] = True
        >>> check_center_inside(m, (3.0, 3.0), "f") is None, check_center_inside(m, (6.2, 3.0), "f")
        (True, 'f: the star centre (x 6.2, y 3) is outside the predicted LV')
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    x, y = float(center[0]), float(center[1])
    inside = math.isfinite(x) and math.isfinite(y)
    if inside:
        col, row = math.floor(x + 0.5), math.floor(y + 0.5)
        inside = 0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and bool(mask[row, col])
    if inside:
        return None
    return f"{name}: the star centre (x {x:g}, y {y:g}) is outside the predicted LV"


def check_slice(mask: np.ndarray, spacing: Sequence[float], name: str, *,
                center: Sequence[float] | None = None, radii: Sequence[float] | None = None,
                star_radius: float | None = None) -> list[str]:
    """All checks that apply to one slice's result; the warnings in a list (empty when fine).

    The rim and centre checks run only when the star's ``radii``/``star_radius`` and ``center``
    are given (a U-Net alone has no star).

    Example:
        >>> m = np.zeros((64, 64), bool); m[:3, :3] = True
        >>> for w in check_slice(m, (1.0, 1.0), "frame 0, slice 0", center=(40.0, 40.0)):
        ...     print(w)
        frame 0, slice 0: LV area 9 mm² is implausibly small (< 20 mm²)
        frame 0, slice 0: the star centre (x 40, y 40) is outside the predicted LV
    """
    warnings = [check_area(mask, spacing, name)]
    if center is not None:
        warnings.append(check_center_inside(mask, center, name))
    if radii is not None and star_radius is not None:
        warnings.append(check_rim(radii, star_radius, name))
    return [w for w in warnings if w is not None]


def check_es_area(ed_areas: Sequence[float], es_areas: Sequence[float], *,
                  frames: tuple[int, int], factor: float = ES_AREA_FACTOR) -> list[str]:
    """Warn for each slice whose LV area at ES exceeds ``factor`` times its area at ED.

    Only slices with LV at both phases (area > 0) are compared. The warning names the ES slice.

    Args:
        ed_areas: the LV area (mm²) of each slice of the ED frame (:func:`lv_area_mm2`).
        es_areas: the LV area (mm²) of the same slices in the ES frame.
        frames: the frame numbers of ED and ES (as in :func:`where`).
        factor: warn above this ratio, ``> 0``.

    Raises:
        ValueError: if the areas are not two 1-D sequences of one length of finite areas
            ``>= 0``, ``frames`` is not two integers, or ``factor`` is not a finite number
            ``> 0``.

    Example:
        >>> check_es_area([16.0, 0.0], [24.0, 4.0], frames=(1, 12))
        ... # doctest: +NORMALIZE_WHITESPACE
        ['frame 12, slice 0: the LV area at ES (24 mm²) is 1.5 times its area at ED (16 mm²);
          the systolic contour is likely wrong']
    """
    ed_areas, es_areas, (_, es_frame) = _phase_areas(ed_areas, es_areas, frames, factor)
    return [f"{where(es_frame, z)}: the LV area at ES ({es:.4g} mm²) is {es / ed:.3g} times its area at ED "
            f"({ed:.4g} mm²); the systolic contour is likely wrong"
            for z, (ed, es) in enumerate(zip(ed_areas.tolist(), es_areas.tolist()))
            if ed > 0 and es > factor * ed]


def check_es_stack_ends(ed_areas: Sequence[float], es_areas: Sequence[float], *,
                        frames: tuple[int, int], factor: float = ES_END_FACTOR) -> list[str]:
    """Warn for an end slice of the ES stack that did not contract with the LV.

    The ends are the first and the last slice with LV at ES (when at least two have one). An end
    warns when the same slice has no LV at ED (on the ground truth of the 80 training patients,
    the LV at ES never reaches beyond the LV at ED), or when its ES/ED area ratio exceeds
    ``factor`` times the median ES/ED ratio of all slices with LV at both phases. The warning
    names the ES slice.

    Args:
        ed_areas: the LV area (mm²) of each slice of the ED frame (:func:`lv_area_mm2`).
        es_areas: the LV area (mm²) of the same slices in the ES frame.
        frames: the frame numbers of ED and ES (as in :func:`where`).
        factor: warn above this ratio to the median, ``> 0``.

    Raises:
        ValueError: as :func:`check_es_area`.

    Example:
        >>> check_es_stack_ends([16.0] * 4, [8.0, 8.0, 8.0, 16.0], frames=(1, 12))
        ... # doctest: +NORMALIZE_WHITESPACE
        ['frame 12, slice 3: an end of the LV stack at ES kept 1 times its ED area (16 mm²) while the LV
          kept 0.5 (median of 4 slices); the LV may end a slice earlier (atrium, outflow tract
          or apex wall?)']
    """
    ed_areas, es_areas, (_, es_frame) = _phase_areas(ed_areas, es_areas, frames, factor)
    with_lv = np.flatnonzero(es_areas > 0)
    if len(with_lv) < 2:
        return []
    both = (ed_areas > 0) & (es_areas > 0)
    ratios = es_areas[both] / ed_areas[both]
    warnings = []
    for z in (int(with_lv[0]), int(with_lv[-1])):
        if ed_areas[z] == 0:
            warnings.append(f"{where(es_frame, z)}: an end of the LV stack at ES has LV ({es_areas[z]:.4g} "
                            "mm²) where ED has none; the LV may end a slice earlier (atrium, "
                            "outflow tract or apex wall?)")
            continue
        median = float(np.median(ratios))
        ratio = float(es_areas[z] / ed_areas[z])
        if ratio > factor * median:
            warnings.append(f"{where(es_frame, z)}: an end of the LV stack at ES kept {ratio:.2g} times its "
                            f"ED area ({ed_areas[z]:.4g} mm²) while the LV kept {median:.2g} "
                            f"(median of {len(ratios)} slices); the LV may end a slice earlier "
                            "(atrium, outflow tract or apex wall?)")
    return warnings


def _phase_areas(ed_areas: Sequence[float], es_areas: Sequence[float], frames: tuple[int, int],
                 factor: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The per-slice areas of ED and ES as arrays and the two frame numbers, checked (for the
    checks across phases)."""
    ed_areas = np.asarray(ed_areas, dtype=np.float64)
    es_areas = np.asarray(es_areas, dtype=np.float64)
    if ed_areas.ndim != 1 or ed_areas.shape != es_areas.shape:
        raise ValueError(f"ed_areas and es_areas must be 1-D, one area per slice, of one "
                         f"length; got shapes {ed_areas.shape} and {es_areas.shape}")
    for name, areas in (("ed_areas", ed_areas), ("es_areas", es_areas)):
        if not (np.isfinite(areas).all() and (areas >= 0).all()):
            raise ValueError(f"{name} must be finite areas >= 0 mm²; got {areas.tolist()}")
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a finite number > 0; got {factor!r}")
    try:
        ed_frame, es_frame = (int(f) for f in frames)
    except (TypeError, ValueError):
        raise ValueError(f"frames must be the ED and ES frame numbers, two integers; got "
                         f"{frames!r}") from None
    return ed_areas, es_areas, (ed_frame, es_frame)
