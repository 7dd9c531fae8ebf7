"""Checks of a whole stack of slices: across the ED and ES frames, and at the ends of a stack.

Where the ED and ES frames are known, :func:`~lvseg.volumes.segment_volume` compares each
slice's LV area (:func:`~lvseg.volumes.plausibility.lv_area_mm2`) across them
(:func:`check_es_area`), checks the two ends of the ES stack against the LV's contraction
(:func:`check_es_stack_ends`) and the apex end of each of the two stacks against the slice
before it (:func:`check_apex_end`). Each warning names its frame and slice
(:func:`~lvseg.volumes.plausibility.where`); none changes a mask. The thresholds were chosen on
the thesis' training patients only (``benchmarks/lv_volumes/README.md``). The check of the star
centres across the ES stack is in :mod:`lvseg.volumes.centre_checks`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lvseg.volumes.plausibility import where

__all__ = ["APEX_END_FACTOR", "APEX_FIRST_MARGIN", "ES_AREA_FACTOR", "ES_END_FACTOR",
           "apex_is_last", "check_apex_end", "check_es_area", "check_es_stack_ends"]

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
#: Smallest ratio of the apex end's LV area to its neighbour's toward the base that warns
#: (:func:`check_apex_end`): the LV tapers toward the apex, while a false LV past it often
#: keeps its size. Chosen on the thesis' training patients only
#: (``benchmarks/lv_volumes/README.md``, "Apex ends"): of 0.8 / 0.9 / 1.0 / 1.2, the best count
#: of silent wrong slices caught less ok slices flagged on the two 80-patient runs (tied with
#: 1.2, which catches fewer on the 10-image runs; there 0.8 catches the most).
APEX_END_FACTOR = 0.9
#: How much more LV area the last half of a stack's slices must hold than the first half for
#: :func:`apex_is_last` to read the stack as stored apex first. On the ground truth of the 100
#: ACDC training patients (stored base first; ED and ES together) the first half holds 0.68
#: (patient047, an apical aneurysm) to several times the last, more than 1.5 times in 86 of
#: them, so a stack stored apex first is recognised for about as many hearts; on the 80-patient
#: runs' predictions only patient047 reads as apex first, on the 10-image runs' 0-2 of 70.
APEX_FIRST_MARGIN = 1.5


def check_es_area(ed_areas: Sequence[float], es_areas: Sequence[float], *,
                  frames: tuple[int, int], factor: float = ES_AREA_FACTOR) -> list[str]:
    """Warn for each slice whose LV area at ES exceeds ``factor`` times its area at ED.

    Only slices with LV at both phases (area > 0) are compared. The warning names the ES slice.

    Args:
        ed_areas: the LV area (mm²) of each slice of the ED frame
            (:func:`~lvseg.volumes.plausibility.lv_area_mm2`).
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
    ed_areas, es_areas, (_, es_frame) = check_phase_inputs(ed_areas, es_areas, frames, factor)
    return [f"{where(es_frame, z)}: the LV area at ES ({es:.4g} mm²) is {es / ed:.3g} times its "
            f"area at ED ({ed:.4g} mm²); the systolic contour is likely wrong"
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
        ed_areas: the LV area (mm²) of each slice of the ED frame
            (:func:`~lvseg.volumes.plausibility.lv_area_mm2`).
        es_areas: the LV area (mm²) of the same slices in the ES frame.
        frames: the frame numbers of ED and ES (as in :func:`where`).
        factor: warn above this ratio to the median, ``> 0``.

    Raises:
        ValueError: as :func:`check_es_area`.

    Example:
        >>> check_es_stack_ends([16.0] * 4, [8.0, 8.0, 8.0, 16.0], frames=(1, 12))
        ... # doctest: +NORMALIZE_WHITESPACE
        ['frame 12, slice 3: an end of the LV stack at ES kept 1 times its ED area (16 mm²)
          while the LV kept 0.5 (median of 4 slices); the LV may end a slice earlier (atrium,
          outflow tract or apex wall?)']
    """
    ed_areas, es_areas, (_, es_frame) = check_phase_inputs(ed_areas, es_areas, frames, factor)
    with_lv = np.flatnonzero(es_areas > 0)
    if len(with_lv) < 2:
        return []
    both = (ed_areas > 0) & (es_areas > 0)
    ratios = es_areas[both] / ed_areas[both]
    warnings = []
    for z in (int(with_lv[0]), int(with_lv[-1])):
        if ed_areas[z] == 0:
            warnings.append(f"{where(es_frame, z)}: an end of the LV stack at ES has LV "
                            f"({es_areas[z]:.4g} mm²) where ED has none; the LV may end a slice "
                            "earlier (atrium, outflow tract or apex wall?)")
            continue
        median = float(np.median(ratios))
        ratio = float(es_areas[z] / ed_areas[z])
        if ratio > factor * median:
            warnings.append(f"{where(es_frame, z)}: an end of the LV stack at ES kept {ratio:.2g} "
                            f"times its ED area ({ed_areas[z]:.4g} mm²) while the LV kept "
                            f"{median:.2g} (median of {len(ratios)} slices); the LV may end a "
                            "slice earlier (atrium, outflow tract or apex wall?)")
    return warnings


def apex_is_last(*frames_areas: Sequence[float], margin: float = APEX_FIRST_MARGIN) -> bool:
    """Whether the apex is at the end of the slice order (the base first), from the LV areas.

    The LV tapers from the base to the apex. Over the given frames (each a sequence of the LV
    area of every slice), the last half of each frame's slices with LV is summed against the
    first half: the stack runs apex first only when the last half holds at least ``margin``
    times the first; otherwise, and when the frames have no LV to tell, the stored order (base
    first, as in ACDC's NIfTI files) stands.

    Example:
        >>> apex_is_last([900.0, 600.0, 300.0, 0.0]), apex_is_last([0.0, 300.0, 600.0, 900.0])
        (True, False)
        >>> apex_is_last([500.0, 600.0, 0.0])  # 600 is less than 1.5 x 500: no evidence
        True
    """
    first = last = 0.0
    for areas in frames_areas:
        areas = _areas("areas", areas)
        with_lv = areas[areas > 0]
        half = len(with_lv) // 2
        first += float(with_lv[:half].sum())
        last += float(with_lv[len(with_lv) - half:].sum())
    return last == 0 or last < margin * first


def check_apex_end(areas: Sequence[float], frame: int, *, apex_last: bool = True,
                   factor: float = APEX_END_FACTOR) -> str | None:
    """Warn when the apex end of one frame's stack does not taper.

    The apex end is the last slice with LV (area > 0), or the first when ``apex_last`` is false
    (:func:`apex_is_last` tells from the areas). When at least two slices have LV, it warns when
    its area is at least ``factor`` times the area of its neighbour with LV toward the base.

    Args:
        areas: the LV area (mm²) of each slice of the frame.
        frame: the frame number the warning names (as in :func:`where`).
        apex_last: whether the slices run from the base to the apex.
        factor: warn at this ratio or above, ``> 0``.

    Raises:
        ValueError: if ``areas`` is not a 1-D sequence of finite areas ``>= 0``, or ``factor``
            is not a finite number ``> 0``.

    Example:
        >>> check_apex_end([900.0, 600.0, 300.0, 0.0], 1) is None
        True
        >>> check_apex_end([900.0, 300.0, 270.0, 0.0], 1)  # doctest: +NORMALIZE_WHITESPACE
        'frame 1, slice 2: the last LV slice toward the apex (270 mm²) is 0.9 times its
         neighbour toward the base (300 mm²); the LV should taper there (a false LV past the
         apex?)'
        >>> check_apex_end([0.0, 270.0, 300.0, 900.0], 1, apex_last=False)[:17]
        'frame 1, slice 1:'
    """
    areas = _areas("areas", areas)
    _factor(factor)
    with_lv = np.flatnonzero(areas > 0)
    if len(with_lv) < 2:
        return None
    apex, neighbour = (with_lv[-1], with_lv[-2]) if apex_last else (with_lv[0], with_lv[1])
    end, before = float(areas[apex]), float(areas[neighbour])
    if end < factor * before:
        return None
    return (f"{where(frame, int(apex))}: the last LV slice toward the apex ({end:.4g} mm²) is "
            f"{end / before:.2g} times its neighbour toward the base ({before:.4g} mm²); the LV "
            "should taper there (a false LV past the apex?)")


def _areas(name: str, areas: Sequence[float]) -> np.ndarray:
    """``areas`` as a 1-D float array, checked to be finite areas ``>= 0`` mm²."""
    areas = np.asarray(areas, dtype=np.float64)
    if areas.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one area per slice; got shape {areas.shape}")
    if not (np.isfinite(areas).all() and (areas >= 0).all()):
        raise ValueError(f"{name} must be finite areas >= 0 mm²; got {areas.tolist()}")
    return areas


def _factor(factor: float) -> None:
    if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
        raise ValueError(f"factor must be a finite number > 0; got {factor!r}")


def check_phase_inputs(ed_areas: Sequence[float], es_areas: Sequence[float],
                       frames: tuple[int, int], factor: float
                       ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The inputs of a check across ED and ES, checked: the areas as arrays and the frames.

    Shared by the checks across phases here and in :mod:`lvseg.volumes.centre_checks`, so each
    refuses the same inputs with the same message; not part of the package's API.

    Returns:
        ``(ed_areas, es_areas, (ed_frame, es_frame))``: the areas as 1-D float arrays.

    Raises:
        ValueError: as :func:`check_es_area`.

    Example:
        >>> check_phase_inputs([16.0, 0.0], [8.0, 0.0], (1, 12), 1.25)
        (array([16.,  0.]), array([8., 0.]), (1, 12))
    """
    ed_shape, es_shape = np.shape(ed_areas), np.shape(es_areas)
    if len(ed_shape) != 1 or ed_shape != es_shape:
        raise ValueError(f"ed_areas and es_areas must be 1-D, one area per slice, of one "
                         f"length; got shapes {ed_shape} and {es_shape}")
    ed_areas, es_areas = _areas("ed_areas", ed_areas), _areas("es_areas", es_areas)
    _factor(factor)
    try:
        ed_frame, es_frame = (int(f) for f in frames)
    except (TypeError, ValueError):
        raise ValueError(f"frames must be the ED and ES frame numbers, two integers; got "
                         f"{frames!r}") from None
    return ed_areas, es_areas, (ed_frame, es_frame)
