"""Data layer of the LV segmentation example: loaders, preprocessing and splits.

Every loader returns ``(slices, report)``: a list of :class:`Slice` (image, LV mask, pixel
spacing, patient) and a :class:`LoadReport` that counts, with reasons, everything not loaded.

Example:
    >>> slices, report = load_dataset("sunnybrook")          # the bundled sample
    >>> data, dropped = preprocess(slices)                  # arrays at 1.37 mm, 128 x 128
    >>> split = split_by_patient(data.patient_ids, (0.34, 0.33, 0.33), seed=0)
    >>> train = data.subset(split.train)
    >>> len(slices), data.images.shape[1:], len(split.patients["train"])
    (56, (1, 128, 128), 1)
"""

from __future__ import annotations

from lvseg.data.acdc import load_acdc
from lvseg.data.datasets import DATASETS, Dataset, load_dataset
from lvseg.data.polygon import polygon_to_mask
from lvseg.data.preprocessing import CROP_SIZE, SPACING_MM, PreparedData, object_radius, preprocess
from lvseg.data.splits import (
    SCHEMES,
    Split,
    split_by_number,
    split_by_patient,
    split_from_lists,
    telescopic_subsets,
    thesis_validation,
)
from lvseg.data.sunnybrook import bundled_sunnybrook, load_sunnybrook
from lvseg.data.synthetic import make_phantoms
from lvseg.data.transforms import crop_around, normalize_intensities, resample
from lvseg.data.types import LoadReport, Skipped, Slice

__all__ = [
    "CROP_SIZE",
    "DATASETS",
    "SCHEMES",
    "SPACING_MM",
    "Dataset",
    "LoadReport",
    "PreparedData",
    "Skipped",
    "Slice",
    "Split",
    "bundled_sunnybrook",
    "crop_around",
    "load_acdc",
    "load_dataset",
    "load_sunnybrook",
    "make_phantoms",
    "normalize_intensities",
    "object_radius",
    "polygon_to_mask",
    "preprocess",
    "resample",
    "split_by_number",
    "split_by_patient",
    "split_from_lists",
    "telescopic_subsets",
    "thesis_validation",
]

# Re-bound here so that autodoc, which reads attribute docs from this module's source, shows them.
#: Common pixel size (mm) every slice is resampled to (:mod:`lvseg.data.preprocessing`).
SPACING_MM = SPACING_MM
#: Side (pixels) of the square crop around the LV centre (:mod:`lvseg.data.preprocessing`).
CROP_SIZE = CROP_SIZE
#: Patient split schemes by name (:mod:`lvseg.data.splits`): ``random`` and ``thesis``.
SCHEMES = SCHEMES
#: The datasets by name (:mod:`lvseg.data.datasets`); :func:`load_dataset` looks names up here.
DATASETS = DATASETS
