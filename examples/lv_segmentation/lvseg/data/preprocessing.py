r"""From :class:`~lvseg.data.Slice` records to arrays ready for torch.

Per slice, in this order:

1. drop it (counted under ``"no_lv"``) if its mask is empty;
2. resample to square pixels of ``spacing`` mm (bilinear for the image; bilinear then threshold
   0.5 for the mask, which keeps the area), keeping the field of view: pixel centres follow the
   convention of :mod:`lvseg.data.polygon`, the image's outer edge stays in place;
3. normalise intensities robustly: clip to the ``percentiles`` (default 1st and 99th), then
   shift and scale to zero mean and unit variance;
4. crop or pad to ``size`` around the LV's centre of mass (``crop="lv"``, the default: the star
   centre is an input of the method anyway, as in the thesis protocol) or around the image centre
   (``crop="image"``); padding takes the lowest normalised intensity and an empty mask;
5. record the LV centre of mass :math:`(x, y)` in the crop and the *object radius*: the distance
   from that centre to the nearest point of the mask's outline (thesis §5.4, used to jitter the
   star centre).

Why 128 x 128 at 1.37 mm by default: it is a 175 mm field of view, small enough for CPU training
and large enough for any LV (blood-pool radius below 40 mm) with context around it. The thesis's
star (radius 65 px = 89 mm at 1.37 mm) reaches one pixel past the border of a crop centred on the
LV; its outer points read padding, far outside the LV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np

from diffbypass.validation import positive_number
from lvseg.data.transforms import crop_around, normalize_intensities, resample
from lvseg.data.types import LoadReport, Slice

if TYPE_CHECKING:
    import torch

__all__ = [
    "CROP_SIZE",
    "REASON_LV_OUTSIDE_CROP",
    "REASON_NO_LV",
    "REASON_NO_LV_AFTER_RESAMPLING",
    "SPACING_MM",
    "PreparedData",
    "object_radius",
    "preprocess",
]

#: Common pixel size (mm) every slice is resampled to (thesis: ~1.37 mm).
SPACING_MM = 1.37
#: Side (pixels) of the square crop around the LV centre (128 px = 175 mm at 1.37 mm).
CROP_SIZE = 128

REASON_NO_LV = "no_lv"
"""The slice's mask is empty."""
REASON_NO_LV_AFTER_RESAMPLING = "no_lv_after_resampling"
"""The mask vanished when resampled (an LV smaller than about half a target pixel)."""
REASON_LV_OUTSIDE_CROP = "lv_outside_crop"
"""With ``crop="image"``: the LV lies entirely outside the crop."""


@dataclass(frozen=True, eq=False)
class PreparedData:
    r"""Preprocessed slices as arrays; :math:`K` slices of :math:`H \times W` pixels.

    Attributes:
        images: normalised intensities, float32 :math:`(K, 1, H, W)`.
        masks: LV blood pool, bool :math:`(K, H, W)`.
        centers: LV centre of mass :math:`(x, y)` = (column, row) in pixels, float32 :math:`(K, 2)`.
        radii: object radius in pixels (distance from the centre to the mask outline; 0 if the
            centre falls outside the mask), float32 :math:`(K,)`.
        patient_ids: patient of each slice, length :math:`K`.
        sources: ``Slice.source`` of each slice, length :math:`K`.
        slice_indices: position of each slice in the list given to :func:`preprocess`, int64
            :math:`(K,)`.
        spacing: pixel size in mm (square pixels).
    """

    images: np.ndarray
    masks: np.ndarray
    centers: np.ndarray
    radii: np.ndarray
    patient_ids: tuple[str, ...]
    sources: tuple[str, ...]
    slice_indices: np.ndarray
    spacing: float

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, indices: Sequence[int] | np.ndarray) -> PreparedData:
        """The slices at ``indices`` (e.g. a split or telescopic subset), in that order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return PreparedData(
            images=self.images[idx],
            masks=self.masks[idx],
            centers=self.centers[idx],
            radii=self.radii[idx],
            patient_ids=tuple(self.patient_ids[i] for i in idx),
            sources=tuple(self.sources[i] for i in idx),
            slice_indices=self.slice_indices[idx],
            spacing=self.spacing,
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """``images``, ``masks``, ``centers`` and ``radii`` as CPU tensors (sharing memory)."""
        import torch

        return {name: torch.from_numpy(getattr(self, name))
                for name in ("images", "masks", "centers", "radii")}


def preprocess(
    slices: Sequence[Slice],
    *,
    spacing: float = SPACING_MM,
    size: int | tuple[int, int] = CROP_SIZE,
    crop: Literal["lv", "image"] = "lv",
    normalize: bool = True,
    percentiles: tuple[float, float] = (1.0, 99.0),
    offset: float = 0.0,
    seed: int = 0,
) -> tuple[PreparedData, LoadReport]:
    """Resample, normalise and crop slices into arrays (steps in the module docstring).

    Args:
        slices: loaded slices, e.g. from :func:`~lvseg.data.load_dataset`.
        spacing: common pixel size in mm.
        size: output ``(H, W)``, or one integer for a square.
        crop: ``"lv"`` centres the crop on the LV's centre of mass, ``"image"`` on the image.
        normalize: apply the robust zero-mean unit-variance scaling (else keep intensities).
        percentiles: clipping percentiles ``(low, high)`` for the normalisation.
        offset: with ``crop="lv"``, move each crop's centre from the LV's by up to ``offset``
            times half the crop, uniformly and independently per slice (0: centred).
        seed: seed of those offsets (drawn for every input slice, in order).

    Returns:
        ``(data, report)``: a :class:`PreparedData` of the kept slices, in input order, and a
        report counting the dropped ones under the ``REASON_*`` keys of this module.

    Example:
        >>> from lvseg.data import make_phantoms
        >>> data, report = preprocess(make_phantoms(4, size=96), size=64)
        >>> data.images.shape, data.masks.shape, data.centers.shape, report.loaded
        ((4, 1, 64, 64), (4, 64, 64), (4, 2), 4)
    """
    from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

    positive_number("spacing (mm)", spacing)
    shape = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
        raise ValueError(f"size must be a positive integer or (H, W) of such; got {size!r}")
    if crop not in ("lv", "image"):
        raise ValueError(f"crop must be 'lv' or 'image'; got {crop!r}")
    if not 0.0 <= offset <= 1.0:
        raise ValueError(f"offset must be a number in [0, 1]; got {offset!r}")
    shifts = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(len(slices), 2)) * offset
    low, high = (float(p) for p in percentiles)
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100; got {percentiles!r}")

    height, width = int(shape[0]), int(shape[1])
    report = LoadReport("preprocess")
    kept: list[tuple[int, Slice, np.ndarray, np.ndarray]] = []
    for index, item in enumerate(slices):
        if not item.has_lv:
            report.skip(REASON_NO_LV, item.source, f"{item.source}: the mask is empty (no LV)")
            continue
        try:
            image, mask = resample(item.image, item.mask, item.spacing, spacing)
        except ValueError as error:  # too large: name the file
            raise ValueError(f"{item.source}: {error}") from None
        if not mask.any():
            report.skip(REASON_NO_LV_AFTER_RESAMPLING, item.source,
                        f"{item.source}: the LV ({int(item.mask.sum())} px) vanished when "
                        f"resampled to {spacing} mm")
            continue
        if normalize:
            image = normalize_intensities(image, (low, high))
        if crop == "lv":
            row, col = ndimage.center_of_mass(mask)
            row, col = row + shifts[index, 0] * (height // 2), col + shifts[index, 1] * (width // 2)
        else:
            row, col = (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
        image, mask, _ = crop_around(image, (row, col), (height, width), mask)
        if not mask.any():
            report.skip(REASON_LV_OUTSIDE_CROP, item.source,
                        f"{item.source}: the LV lies outside the {height}x{width} crop")
            continue
        kept.append((index, item, image, mask))
        report.add_loaded()

    images = np.zeros((len(kept), 1, height, width), dtype=np.float32)
    masks = np.zeros((len(kept), height, width), dtype=bool)
    centers = np.zeros((len(kept), 2), dtype=np.float32)
    radii = np.zeros(len(kept), dtype=np.float32)
    for k, (_, _, image, mask) in enumerate(kept):
        images[k, 0], masks[k] = image, mask
        row, col = ndimage.center_of_mass(mask)
        centers[k] = (col, row)
        radii[k] = object_radius(mask, (col, row))
    data = PreparedData(
        images=images,
        masks=masks,
        centers=centers,
        radii=radii,
        patient_ids=tuple(item.patient_id for _, item, _, _ in kept),
        sources=tuple(item.source for _, item, _, _ in kept),
        slice_indices=np.array([index for index, _, _, _ in kept], dtype=np.int64),
        spacing=float(spacing),
    )
    return data, report


def object_radius(mask: np.ndarray, center: tuple[float, float]) -> float:
    r"""Distance in pixels from ``center`` to the nearest point of the mask's outline.

    The outline is the boundary of the union of the mask's pixel squares (pixel ``(r, c)`` is the
    unit square centred at :math:`(x, y) = (c, r)`); the image border counts as background.

    Args:
        mask: bool :math:`(H, W)`.
        center: point :math:`(x, y)` in pixel coordinates.

    Returns:
        The distance, or ``0.0`` if ``center`` lies outside the mask (no star centre can be
        jittered inside it then).

    Example:
        >>> m = np.zeros((9, 9), bool); m[2:7, 2:7] = True   # 5x5 square, outline x, y = 1.5, 6.5
        >>> object_radius(m, (4.0, 4.0))
        2.5
    """
    mask = np.asarray(mask, dtype=bool)
    x, y = float(center[0]), float(center[1])
    row, col = int(math.floor(y + 0.5)), int(math.floor(x + 0.5))
    if not (0 <= row < mask.shape[0] and 0 <= col < mask.shape[1] and mask[row, col]):
        return 0.0
    padded = np.pad(mask, 1)
    # vertical edges x = c + 0.5 between (r, c) and (r, c + 1); y spans r -/+ 0.5
    r_v, c_v = np.nonzero(padded[:, :-1] != padded[:, 1:])
    # horizontal edges y = r + 0.5 between (r, c) and (r + 1, c); x spans c -/+ 0.5
    r_h, c_h = np.nonzero(padded[:-1, :] != padded[1:, :])
    r_v, c_v, r_h, c_h = r_v - 1.0, c_v - 1.0, r_h - 1.0, c_h - 1.0
    d_v = np.hypot(x - (c_v + 0.5), np.maximum(np.abs(y - r_v) - 0.5, 0.0))
    d_h = np.hypot(y - (r_h + 0.5), np.maximum(np.abs(x - c_h) - 0.5, 0.0))
    return float(min(d_v.min(initial=np.inf), d_h.min(initial=np.inf)))
