r"""LV volumes in millilitres and the ejection fraction.

The LV volume of a frame is its mask's voxel count times the voxel volume
:math:`dz\,dy\,dx` (from the header's zooms, or the DICOM geometry), in mL (1 mL = 1000 mm³), the
way the ACDC challenge computes it (Bernard et al. 2018). With EDV and ESV the volumes at end
diastole and end systole, the ejection fraction in percent is

.. math::

    \mathrm{EF} = 100\,\frac{\mathrm{EDV} - \mathrm{ESV}}{\mathrm{EDV}}.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

from lvseg.volumes.io import check_volume_spacing

__all__ = ["Phases", "ejection_fraction", "lv_volume_ml", "phases"]


def lv_volume_ml(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray | float:
    """LV volume(s) in mL of a mask ``(Z, H, W)`` (a float) or ``(T, Z, H, W)`` (one per frame).

    Args:
        mask: boolean LV mask (or 0/1 integers; any non-zero voxel counts).
        spacing: voxel size ``(dz, dy, dx)`` in mm.

    Raises:
        ValueError: if ``mask`` is neither 3-D nor 4-D, or ``spacing`` is invalid.

    Example:
        >>> lv_volume_ml(np.ones((2, 10, 10), bool), (10.0, 1.0, 1.0))
        2.0
    """
    mask = np.asarray(mask)
    if mask.ndim not in (3, 4):
        raise ValueError(f"mask must have shape (Z, H, W) or (T, Z, H, W); got {mask.shape}")
    voxel = math.prod(check_volume_spacing(spacing, "lv_volume_ml")) / 1000.0
    counts = np.count_nonzero(mask, axis=(-3, -2, -1))
    return float(counts) * voxel if mask.ndim == 3 else counts.astype(np.float64) * voxel


def ejection_fraction(edv: float, esv: float) -> float:
    """EF in percent from EDV and ESV (mL); ``nan`` when EDV is 0 (no LV found at ED).

    Raises:
        ValueError: if a volume is negative or not finite.

    Example:
        >>> ejection_fraction(150.0, 60.0)
        60.0
    """
    edv, esv = float(edv), float(esv)
    for name, value in (("edv", edv), ("esv", esv)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite volume >= 0 mL; got {value!r}")
    return math.nan if edv == 0 else 100.0 * (edv - esv) / edv


class Phases(NamedTuple):
    """End-diastolic and end-systolic volumes and the ejection fraction of one case."""

    edv_ml: float
    """Volume at the ED frame (mL)."""
    esv_ml: float
    """Volume at the ES frame (mL)."""
    ef_percent: float
    """Ejection fraction (%), :func:`ejection_fraction`."""


def phases(volumes_ml: Sequence[float], ed: int, es: int) -> Phases:
    """EDV, ESV and EF from the per-frame volumes and the ED/ES frame indices.

    Example:
        >>> phases([150.0, 90.0, 60.0], ed=0, es=2)
        Phases(edv_ml=150.0, esv_ml=60.0, ef_percent=60.0)
    """
    volumes = [float(v) for v in volumes_ml]
    edv = volumes[frame_index("ed", ed, len(volumes))]
    esv = volumes[frame_index("es", es, len(volumes))]
    return Phases(edv, esv, ejection_fraction(edv, esv))


def frame_index(name: str, t: object, n_frames: int) -> int:
    """``t`` checked to be a frame index: an integer in ``[0, n_frames)``.

    Raises:
        ValueError: naming ``name``, for a non-integer (``1.5``, ``True``, ``"2"``) or an index
            outside the frames (negative indices are refused, not counted from the end).

    Example:
        >>> frame_index("es", 2, 3)
        2
        >>> frame_index("es", 3, 3)
        Traceback (most recent call last):
        ...
        ValueError: es must be a frame index in [0, 2]; got 3
    """
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) \
            or not 0 <= int(t) < n_frames:
        raise ValueError(f"{name} must be a frame index in [0, {n_frames - 1}]; got {t!r}")
    return int(t)
