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

import os
from typing import Any, Literal

from lvseg.data.acdc import load_acdc
from lvseg.data.polygon import polygon_to_mask
from lvseg.data.preprocessing import PreparedData, object_radius, preprocess, resample
from lvseg.data.splits import Split, split_by_patient, split_from_lists, telescopic_subsets
from lvseg.data.sunnybrook import bundled_sunnybrook, load_sunnybrook
from lvseg.data.synthetic import make_phantoms
from lvseg.data.types import LoadReport, Skipped, Slice

__all__ = [
    "DATASETS",
    "LoadReport",
    "PreparedData",
    "Skipped",
    "Slice",
    "Split",
    "bundled_sunnybrook",
    "load_acdc",
    "load_dataset",
    "load_sunnybrook",
    "make_phantoms",
    "object_radius",
    "polygon_to_mask",
    "preprocess",
    "resample",
    "split_by_patient",
    "split_from_lists",
    "telescopic_subsets",
]

DATASETS = ("sunnybrook", "acdc", "synthetic")
"""Names accepted by :func:`load_dataset`."""


def load_dataset(
    name: Literal["sunnybrook", "acdc", "synthetic"],
    data_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> tuple[list[Slice], LoadReport]:
    """Load a dataset by name.

    Args:
        name: ``"sunnybrook"`` (:func:`load_sunnybrook`; without ``data_dir`` the bundled
            sample), ``"acdc"`` (:func:`load_acdc`; ``data_dir`` required) or ``"synthetic"``
            (:func:`make_phantoms`; no ``data_dir``, ``n`` defaults to 256).
        data_dir: dataset folder.
        **kwargs: passed on to the loader (e.g. ``n=1000, seed=3`` for ``"synthetic"``).

    Returns:
        ``(slices, report)``.

    Raises:
        ValueError: on an unknown name, a missing ``data_dir`` for ACDC, or a ``data_dir`` for
            ``"synthetic"``.

    Example:
        >>> slices, report = load_dataset("synthetic", n=8, size=64, seed=0)
        >>> print(report)
        synthetic(n=8, seed=0): 8 loaded, 0 skipped
    """
    if name == "sunnybrook":
        return load_sunnybrook(data_dir, **kwargs)
    if name == "acdc":
        if data_dir is None:
            raise ValueError("data_dir is required for 'acdc' (the ACDC data are not bundled)")
        return load_acdc(data_dir, **kwargs)
    if name == "synthetic":
        if data_dir is not None:
            raise ValueError(f"'synthetic' is generated and takes no data_dir; got {data_dir!r}")
        kwargs.setdefault("n", 256)
        slices = make_phantoms(**kwargs)
        report = LoadReport(f"synthetic(n={kwargs['n']}, seed={kwargs.get('seed', 0)})")
        report.add_loaded(len(slices))
        return slices, report
    raise ValueError(f"name must be one of {', '.join(map(repr, DATASETS))}; got {name!r}")
