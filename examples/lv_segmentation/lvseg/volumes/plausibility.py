"""Plausibility checks of one slice's result: each returns a warning naming the slice, or ``None``.

A slice is named by its frame and slice indices (:func:`where`), so a warning reads
``"frame 3, slice 7: ..."``. The checks are pure functions of the result; :func:`check_slice`
runs all that apply. The checks of a whole stack (across the ED and ES frames, and of its ends)
are in :mod:`lvseg.volumes.stack_checks` and importable from here. None refuses a result: the
warnings go to the user and into the JSON.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lvseg.star import RIM_FRACTION, RIM_TOLERANCE, at_rim, lines_at_rim, mostly_at_rim

#: The checks across ED and ES and of a stack's ends, in :mod:`lvseg.volumes.stack_checks`;
#: importable from here too (looked up there on first use: that module names slices with
#: :func:`where`).
_STACK_CHECKS = ("APEX_END_FACTOR", "ES_AREA_FACTOR", "ES_END_FACTOR", "check_apex_end",
                 "check_es_area", "check_es_stack_ends")

__all__ = ["MAX_AREA_MM2", "MIN_AREA_MM2", "RIM_FRACTION", "RIM_TOLERANCE", "at_rim",
           "check_area", "check_center_inside", "check_rim", "check_slice", "lines_at_rim",
           "lv_area_mm2", "where", *_STACK_CHECKS]

#: Smallest plausible LV blood-pool area (mm²) of a slice with LV: a few pixels at the apex.
MIN_AREA_MM2 = 20.0
#: Largest plausible LV blood-pool area (mm²): beyond the most dilated ventricles at the base.
MAX_AREA_MM2 = 6000.0


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


def __getattr__(name: str):
    """The names of :mod:`lvseg.volumes.stack_checks`, importable from here."""
    if name in _STACK_CHECKS:
        from lvseg.volumes import stack_checks

        return getattr(stack_checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
