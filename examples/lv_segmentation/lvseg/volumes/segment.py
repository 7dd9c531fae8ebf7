r"""Segmenting a whole volume with any slice segmenter, checking every slice's result.

This is where a centre-free segmenter plugs in: anything callable as a :class:`SliceSegmenter`
(the images of a volume in, one :class:`SliceResult` per slice out) gives, through
:func:`segment_volume`, the LV masks :math:`(T, Z, H, W)`, the slices found without LV, the
plausibility warnings (:mod:`lvseg.volumes.plausibility`, :mod:`lvseg.volumes.stack_checks`,
:mod:`lvseg.volumes.centre_checks`) and the volumes in mL (:mod:`lvseg.volumes.cardiac`). The
segmenter sees the whole cine at once, so it may batch slices, use neighbouring slices or the
beating of the LV between frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

import numpy as np
from scipy import ndimage

from lvseg.volumes.cardiac import Phases, frame_index, lv_volume_ml, phases
from lvseg.volumes.centre_checks import check_es_centre_jump
from lvseg.volumes.io import Volume
from lvseg.volumes.plausibility import check_slice, lv_area_mm2, where
from lvseg.volumes.stack_checks import (apex_is_last, check_apex_end, check_es_area,
                                        check_es_stack_ends)

__all__ = ["SliceResult", "SliceSegmenter", "VolumeSegmentation", "largest_component",
           "segment_volume"]


class SliceResult(NamedTuple):
    """One slice's result from a :class:`SliceSegmenter`."""

    mask: np.ndarray
    """Predicted LV mask :math:`(H, W)` bool; empty when ``has_lv`` is false."""
    has_lv: bool
    """Whether the segmenter found an LV in the slice (apex and base slices may have none)."""
    center: tuple[float, float] | None = None
    """The star's centre :math:`(x, y)` in pixels, ``None`` without a star (a U-Net alone)."""
    radii: np.ndarray | None = None
    """Distance of the contour from the centre on each star line (pixels), or ``None``."""
    star_radius: float | None = None
    """The star's radius (pixels), or ``None``."""
    note: str | None = None
    """What the segmenter wants the user told about this slice (e.g. that it replaced an
    implausible contour); :func:`segment_volume` makes it a warning naming the slice."""


class SliceSegmenter(Protocol):
    """Anything that segments every slice of a volume (e.g. a trained run, centre-free)."""

    def __call__(self, images: np.ndarray, spacing: tuple[float, float, float]
                 ) -> Sequence[SliceResult]:
        """Segment ``images`` :math:`(T, Z, H, W)` with voxel size ``(dz, dy, dx)`` mm.

        Returns:
            :math:`T \\cdot Z` results in ``(t, z)`` order (``z`` fastest).
        """
        ...


@dataclass(frozen=True, eq=False)
class VolumeSegmentation:
    """The result of :func:`segment_volume` for one volume."""

    masks: np.ndarray
    """LV masks :math:`(T, Z, H, W)` bool."""
    volumes_ml: np.ndarray
    """LV volume per frame (mL), :math:`(T,)`."""
    no_lv: list[tuple[int, int]]
    """``(t, z)`` of the slices the segmenter found without LV."""
    warnings: list[str]
    """Plausibility warnings, each naming its slice (``"frame 3, slice 7: ..."``)."""

    def phases(self, ed: int, es: int) -> Phases:
        """EDV, ESV and EF with the ED/ES frame indices (:func:`~lvseg.volumes.phases`)."""
        return phases(self.volumes_ml, ed, es)


def segment_volume(volume: Volume, segmenter: SliceSegmenter, *, ed: int | None = None,
                   es: int | None = None) -> VolumeSegmentation:
    """Segment every slice of every frame of ``volume`` and check each result.

    Warnings name slices by the frame numbers of ``volume.frames`` and the slice index. With the
    ED and ES frame indices given, each slice's LV area is also compared across them
    (:func:`~lvseg.volumes.stack_checks.check_es_area`: ``"frame 12, slice 3: the LV area at
    ES ..."``), and so are the ends of the ES stack
    (:func:`~lvseg.volumes.stack_checks.check_es_stack_ends`: ``"frame 12, slice 0: an end of
    ..."``) and the apex end of the ED and of the ES stack
    (:func:`~lvseg.volumes.stack_checks.check_apex_end`: ``"frame 1, slice 9: the last LV slice
    toward the apex ..."``), and the star centre of each ES slice against its neighbours' and
    its own at ED (:func:`~lvseg.volumes.centre_checks.check_es_centre_jump`: ``"frame 12, slice
    6: the star centre at ES is ..."``).

    Raises:
        ValueError: if ``ed`` or ``es`` is given but is not a frame index of ``volume``
            (before anything is segmented); naming ``volume.source``, if the segmenter returns
            the wrong number of results or a mask of the wrong shape, or an LV-free slice with
            a non-empty mask.

    Example:
        >>> v = Volume(np.zeros((1, 2, 8, 8)), (10.0, 1.0, 1.0), "demo")
        >>> def nothing(images, spacing):
        ...     return [SliceResult(np.zeros(images.shape[-2:], bool), False)] * 2
        >>> segment_volume(v, nothing).no_lv
        [(0, 0), (0, 1)]
    """
    n_t, n_z, height, width = volume.array.shape
    if ed is not None:
        ed = frame_index("ed", ed, n_t)
    if es is not None:
        es = frame_index("es", es, n_t)
    results = list(segmenter(volume.array, volume.spacing))
    if len(results) != n_t * n_z:
        raise ValueError(f"{volume.source}: the segmenter returned {len(results)} results for "
                         f"{n_t} x {n_z} = {n_t * n_z} slices")
    masks = np.zeros((n_t, n_z, height, width), dtype=bool)
    centres: list[list[tuple[float, float] | None]] = [[None] * n_z for _ in range(n_t)]
    no_lv: list[tuple[int, int]] = []
    warnings: list[str] = []
    for i, result in enumerate(results):
        t, z = divmod(i, n_z)
        name = where(volume.frames[t], z)
        mask = np.asarray(result.mask, dtype=bool)
        if mask.shape != (height, width):
            raise ValueError(f"{volume.source}, {name}: mask shape {mask.shape}, expected "
                             f"{(height, width)}")
        if not result.has_lv:
            if mask.any():
                raise ValueError(f"{volume.source}, {name}: a slice without LV must have an "
                                 "empty mask")
            no_lv.append((t, z))
            continue
        if not mask.any():
            warnings.append(f"{name}: the LV was found but its mask is empty")
            continue
        masks[t, z] = mask
        centres[t][z] = result.center
        if result.note:
            warnings.append(f"{name}: {result.note}")
        warnings.extend(check_slice(mask, volume.spacing[1:], name, center=result.center,
                                    radii=result.radii, star_radius=result.star_radius))
    if ed is not None and es is not None and ed != es:
        ed_areas, es_areas = lv_area_mm2(masks[[ed, es]], volume.spacing[1:])
        frames = (volume.frames[ed], volume.frames[es])
        # each check validates the areas again, as for any caller: one pass over Z floats,
        # nothing next to segmenting, so no unchecked path is kept for this caller
        warnings.extend(check_es_area(ed_areas, es_areas, frames=frames))
        warnings.extend(check_es_stack_ends(ed_areas, es_areas, frames=frames))
        apex_last = apex_is_last(ed_areas, es_areas)
        for areas, frame in zip((ed_areas, es_areas), frames):
            apex = check_apex_end(areas, frame, apex_last=apex_last)
            if apex is not None:
                warnings.append(apex)
        warnings.extend(check_es_centre_jump(centres[ed], centres[es], ed_areas, es_areas,
                                             spacing=volume.spacing[1:], frames=frames))
    return VolumeSegmentation(masks, lv_volume_ml(masks, volume.spacing), no_lv, warnings)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a 2-D mask (empty stays empty).

    What the challenge protocol scores for a U-Net alone (its thresholded mask may have
    scattered components elsewhere in the full image).

    Example:
        >>> m = np.zeros((5, 6), bool); m[0, 0] = True; m[2:4, 2:5] = True
        >>> int(largest_component(m).sum())
        6
    """
    mask = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)
