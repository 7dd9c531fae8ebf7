"""A check of the star centres of a stack: an ES centre that jumped away from the LV's axis.

A centre-free segmenter places the star on each slice on its own (the locator's blob), so on a
slice where the locator picked the wrong blob the contour is drawn around a point outside the LV:
often a small, plausible contour that no check of the slice alone can tell (issue #19's "centre
outside"). The LV's centres line up from slice to slice and barely move between ED and ES, so
:func:`check_es_centre_jump` warns for an ES slice whose centre is far from both its neighbours'
in the ES stack and its own at ED. :func:`~lvseg.volumes.segment_volume` runs it where ED and ES
are known; the warning names the frame and slice (:func:`~lvseg.volumes.plausibility.where`) and
changes no mask. The rule and its factor were chosen on the thesis' training patients only
(``benchmarks/lv_volumes/README.md``, "Star centres across the stack").
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from lvseg.data.types import positive_sizes
from lvseg.volumes.plausibility import where
from lvseg.volumes.stack_checks import check_phase_inputs

__all__ = ["CENTRE_JUMP_FACTOR", "check_es_centre_jump"]

#: How many LV radii (``sqrt(area / pi)`` of the ES slice) its star centre may lie from both
#: references of :func:`check_es_centre_jump` before it warns. Chosen on the thesis' training
#: patients only (``benchmarks/lv_volumes/README.md``, "Star centres across the stack"): of the
#: references tried (the median, a line fitted along the stack, the neighbours, the ED centre,
#: alone and in pairs) at 0.75 / 1 / 1.25 / 1.5 / 2 radii, the best count of silent wrong ES
#: slices caught less ok slices newly warned over two 10-image runs (+31 for 2, +34 for 4 of 70
#: patients each) among those that caught more than they flagged on the 80-patient run's own
#: training patients (+3 for 2 of 80).
CENTRE_JUMP_FACTOR = 1.0


def check_es_centre_jump(ed_centres: Sequence[Sequence[float] | None],
                         es_centres: Sequence[Sequence[float] | None],
                         ed_areas: Sequence[float], es_areas: Sequence[float], *,
                         spacing: Sequence[float], frames: tuple[int, int],
                         factor: float = CENTRE_JUMP_FACTOR) -> list[str]:
    """Warn for each ES slice whose star centre jumped away from the LV's axis.

    A slice has LV in a frame when its area there is ``> 0`` and it has a centre. An ES slice
    with LV warns when its centre lies more than ``factor`` times its LV radius
    ``sqrt(area / pi)`` from **both** the mean centre of its nearest slices with LV toward either
    end of the ES stack (one at an end of the stack) and its own centre at ED. A slice without a
    neighbour with LV at ES, or without LV at ED, is not checked. Distances are in mm.

    Args:
        ed_centres: the star centre ``(x, y)`` in pixels of each slice of the ED frame, or
            ``None`` (no LV, or no star: a U-Net alone).
        es_centres: the same for the ES frame.
        ed_areas: the LV area (mm²) of each slice at ED
            (:func:`~lvseg.volumes.plausibility.lv_area_mm2`).
        es_areas: the LV area (mm²) of each slice at ES.
        spacing: pixel size ``(dy, dx)`` in mm.
        frames: the frame numbers of ED and ES (as in :func:`where`).
        factor: warn above this many radii, ``> 0``.

    Raises:
        ValueError: if the four sequences are not of one length, a centre is neither ``None``
            nor two finite numbers, the areas are not finite areas ``>= 0``, ``spacing`` is not
            two finite sizes ``> 0``, ``frames`` is not two integers, or ``factor`` is not a
            finite number ``> 0``.

    Example:
        >>> area = 16 * math.pi  # a radius of 4 mm
        >>> check_es_centre_jump([(10, 10)] * 3, [(10, 10), (20, 10), (10, 10)], [area] * 3,
        ...                      [area] * 3, spacing=(1.0, 1.0), frames=(1, 12))
        ... # doctest: +NORMALIZE_WHITESPACE
        ['frame 12, slice 1: the star centre at ES is 10 mm from the mean of its neighbours
          (slices 0 and 2) and 10 mm from its centre at ED, both more than 1 times its LV radius
          (4 mm); the star may be centred outside the LV']

        Slices 0 and 2 are 10 mm from their neighbour too, but at their own ED centre: no
        warning.
    """
    ed_areas, es_areas, (_, es_frame) = check_phase_inputs(ed_areas, es_areas, frames, factor)
    n = len(es_areas)
    if len(ed_centres) != n or len(es_centres) != n:
        raise ValueError(f"ed_centres and es_centres must have one centre per slice, {n} like "
                         f"the areas; got {len(ed_centres)} and {len(es_centres)}")
    pixel = positive_sizes(spacing, 2)
    if pixel is None:
        raise ValueError(f"spacing must be the pixel size (dy, dx) in mm, two finite sizes > 0; "
                         f"got {spacing!r}")
    dy, dx = pixel
    ed_mm = [_centre_mm("ed_centres", z, c, dx, dy) for z, c in enumerate(ed_centres)]
    es_mm = [_centre_mm("es_centres", z, c, dx, dy) for z, c in enumerate(es_centres)]
    with_lv = [z for z in range(n) if es_areas[z] > 0 and es_mm[z] is not None]
    warnings = []
    for i, z in enumerate(with_lv):
        if ed_areas[z] <= 0 or ed_mm[z] is None:
            continue
        neighbours = with_lv[max(i - 1, 0):i] + with_lv[i + 1:i + 2]
        if not neighbours:
            continue
        mean = np.mean([es_mm[k] for k in neighbours], axis=0)
        from_neighbours = float(np.hypot(*(es_mm[z] - mean)))
        from_ed = float(np.hypot(*(es_mm[z] - ed_mm[z])))
        radius = math.sqrt(float(es_areas[z]) / math.pi)
        if from_neighbours > factor * radius and from_ed > factor * radius:
            reference = (f"the mean of its neighbours (slices {neighbours[0]} and {neighbours[1]})"
                         if len(neighbours) == 2 else f"its neighbour (slice {neighbours[0]})")
            warnings.append(
                f"{where(es_frame, z)}: the star centre at ES is {from_neighbours:.3g} mm from "
                f"{reference} and {from_ed:.3g} mm from its centre at ED, both more than "
                f"{factor:g} times its LV radius ({radius:.3g} mm); the star may be centred "
                "outside the LV")
    return warnings


def _centre_mm(name: str, z: int, centre: Sequence[float] | None, dx: float, dy: float
               ) -> np.ndarray | None:
    """A centre ``(x, y)`` in pixels as ``(x, y)`` in mm, or ``None``; checked."""
    if centre is None:
        return None
    try:
        x, y = (float(v) for v in centre)
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{z}] must be None or a centre (x, y) in pixels; got "
                         f"{centre!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name}[{z}] must be finite; got {centre!r}")
    return np.array([x * dx, y * dy])
