"""The records every loader returns: one annotated :class:`Slice`, and a :class:`LoadReport`.

A loader never drops an item silently: whatever it does not turn into a :class:`Slice` is written
into the :class:`LoadReport` with a reason key (one of the ``REASON_*`` constants of the loader
that skipped it) and a message naming the file and what was wrong.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = ["SPACING_RANGE_MM", "LoadReport", "Skipped", "Slice", "check_pixels", "check_spacing",
           "positive_sizes"]

#: The pixel sizes (mm) lvseg accepts, from any file or option. Short-axis cardiac MRI has about
#: 0.5-3 mm; a size far outside is a broken header (a mask covering the whole image at 0.01 mm,
#: gigabytes of resampled pixels at 300 mm), not an image to segment.
SPACING_RANGE_MM = (0.1, 10.0)


def check_spacing(spacing: object, name: str = "spacing") -> tuple[float, float]:
    """``spacing`` as ``(row_mm, col_mm)``, two numbers within :data:`SPACING_RANGE_MM`.

    Raises:
        ValueError: naming ``name`` (the file or option it came from), the range and the value.

    Example:
        >>> check_spacing((1.25, 1.25))
        (1.25, 1.25)
    """
    low, high = SPACING_RANGE_MM
    values = positive_sizes(spacing, 2)
    if values is None:
        raise ValueError(
            f"{name} must be (row_mm, col_mm), two positive numbers; got {spacing!r}"
        )
    if not all(low <= v <= high for v in values):
        raise ValueError(
            f"{name} must be between {low:g} and {high:g} mm per pixel (short-axis cardiac MRI: "
            f"about 0.5-3 mm); got {values[0]:g} x {values[1]:g} mm: check the file's pixel "
            "spacing (or --spacing)"
        )
    return (values[0], values[1])


def positive_sizes(value: object, count: int) -> tuple[float, ...] | None:
    """``value`` as ``count`` finite floats ``> 0``, or ``None`` when it is not that.

    The rule every pixel or voxel spacing follows, whatever file, option or argument it comes
    from; each caller refuses a ``None`` with a message naming its argument, what it expected
    and what it got.

    Example:
        >>> positive_sizes(["1.25", 1.5], 2), positive_sizes((0, 1), 2), positive_sizes(None, 2)
        ((1.25, 1.5), None, None)
        >>> positive_sizes((10, 1.5, 1.25), 3), positive_sizes((1.5, 1.25), 3)
        ((10.0, 1.5, 1.25), None)
    """
    try:
        values = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    if len(values) != count or not all(math.isfinite(v) and v > 0 for v in values):
        return None
    return values


def check_pixels(image: np.ndarray, name: str = "image") -> None:
    """Refuse an image with NaN or infinite pixels, naming ``name`` (its file).

    Raises:
        ValueError: with the count of non-finite pixels.
    """
    finite = np.isfinite(image)
    if not finite.all():
        bad = int((~finite).sum())
        raise ValueError(
            f"{name} has {bad} of {image.size} pixels that are NaN or infinite; lvseg needs a "
            "finite image (a DICOM RescaleSlope/Intercept beyond float32, a mask, or a file of "
            "another kind?): repair or remove it"
        )


@dataclass(frozen=True, eq=False)
class Slice:
    r"""One 2-D short-axis image with its left-ventricle (LV) blood-pool mask.

    Args:
        image: intensities, converted to ``float32`` of shape :math:`(H, W)`.
        mask: LV blood pool (inside the endocardium), converted to ``bool`` of shape
            :math:`(H, W)`; may be empty (loaders drop such slices, :func:`preprocess` too).
        spacing: pixel size ``(row_mm, col_mm)``: distance between the centres of adjacent rows,
            then of adjacent columns, in millimetres.
        patient_id: the patient the slice belongs to (splits never separate a patient's slices).
        source: where the slice came from (a file path, ``path#z=3`` for a volume slice, ...).
        extras: anything else a loader knows (contour points, frame number, full label map, ...);
            documented by each loader.

    Raises:
        ValueError: naming ``source``, if the image is not 2-D or has NaN/inf pixels
            (:func:`check_pixels`), the mask shape differs, or the spacing is not two numbers
            in :data:`SPACING_RANGE_MM` (:func:`check_spacing`).

    Example:
        >>> s = Slice(np.zeros((4, 5)), np.eye(4, 5), (1.5, 1.5), "p1", "demo")
        >>> s.shape, s.image.dtype, s.mask.dtype, s.lv_area_mm2
        ((4, 5), dtype('float32'), dtype('bool'), 9.0)
    """

    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float]
    patient_id: str
    source: str
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        image = np.ascontiguousarray(self.image, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"image must have shape (H, W); got {image.shape}")
        mask = np.ascontiguousarray(self.mask).astype(bool, copy=False)
        if mask.shape != image.shape:
            raise ValueError(
                f"mask must have the image's shape {image.shape}; got {mask.shape}"
            )
        spacing = check_spacing(self.spacing, f"{self.source}: spacing")
        check_pixels(image, str(self.source))
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "patient_id", str(self.patient_id))
        object.__setattr__(self, "source", str(self.source))

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(H, W)``."""
        return self.image.shape  # type: ignore[return-value]

    @property
    def has_lv(self) -> bool:
        """Whether the mask holds at least one pixel."""
        return bool(self.mask.any())

    @property
    def lv_area_mm2(self) -> float:
        """LV blood-pool area in mm² (pixel count times pixel area)."""
        return float(self.mask.sum()) * self.spacing[0] * self.spacing[1]


class Skipped(NamedTuple):
    """One item a loader or :func:`preprocess` did not keep."""

    reason: str
    """Short stable key, e.g. ``"no_lv"``; group and count by it."""
    item: str
    """The file, slice or volume concerned."""
    message: str
    """Human-readable explanation naming the item and what was wrong."""


@dataclass
class LoadReport:
    """What a loading (or preprocessing) step kept and what it skipped, and why.

    Args:
        source: the dataset or step the report describes (e.g. the data directory).
        loaded: number of slices kept.
        skipped: one :class:`Skipped` per item not kept.

    Example:
        >>> r = LoadReport("demo")
        >>> r.add_loaded(3)
        >>> r.skip("no_lv", "a.dcm", "a.dcm: the contour encloses no pixel centre")
        >>> r.loaded, r.n_skipped, r.counts()
        (3, 1, {'no_lv': 1})
        >>> print(r)
        demo: 3 loaded, 1 skipped (no_lv: 1)
    """

    source: str
    loaded: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def add_loaded(self, n: int = 1) -> None:
        """Count ``n`` more kept slices."""
        self.loaded += int(n)

    def skip(self, reason: str, item: str, message: str) -> None:
        """Record one skipped item."""
        self.skipped.append(Skipped(str(reason), str(item), str(message)))

    @property
    def n_skipped(self) -> int:
        """Number of skipped items."""
        return len(self.skipped)

    def counts(self) -> dict[str, int]:
        """Skipped items per reason, most frequent first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def messages(self, reason: str | None = None) -> list[str]:
        """The messages of the skipped items, optionally only those with ``reason``."""
        return [s.message for s in self.skipped if reason is None or s.reason == reason]

    def __str__(self) -> str:
        text = f"{self.source}: {self.loaded} loaded, {self.n_skipped} skipped"
        if self.skipped:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.counts().items()) + ")"
        return text
