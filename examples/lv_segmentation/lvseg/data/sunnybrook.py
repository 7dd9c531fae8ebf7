"""Loader for Sunnybrook cardiac MRI in the ``dicoms/ + contourfiles/ + link.csv`` layout.

Layout (the bundled sample, :func:`bundled_sunnybrook`, uses it)::

    <data_dir>/link.csv                      patient_id,original_id
    <data_dir>/dicoms/<patient_id>/<n>.dcm   one DICOM per image, n = image number
    <data_dir>/contourfiles/<original_id>/i-contours/IM-0001-<nnnn>-icontour-manual.txt

A contour file holds one ``x y`` point per line in pixel coordinates (x = column, y = row); the
polygon is closed implicitly. It is filled with :func:`~lvseg.data.polygon_to_mask` (a pixel is
inside iff its centre is). Outer (``o-contours``) contours are not read.

Only annotated images are read. Every item that does not become a :class:`~lvseg.data.Slice` is
counted in the :class:`~lvseg.data.LoadReport` under one of the ``REASON_*`` keys below.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from lvseg.data.polygon import polygon_to_mask, read_contour
from lvseg.data.readers import dicom_pixels, dicom_spacing
from lvseg.data.types import LoadReport, Slice

__all__ = [
    "REASON_CONTOUR_WITHOUT_IMAGE",
    "REASON_IMAGE_WITHOUT_CONTOUR",
    "REASON_NO_LV",
    "REASON_NO_PIXEL_DATA",
    "REASON_NO_PIXEL_SPACING",
    "REASON_NOT_IN_LINK_CSV",
    "REASON_TOO_FEW_POINTS",
    "REASON_UNREADABLE_CONTOUR",
    "REASON_UNREADABLE_DICOM",
    "REASON_UNRECOGNISED_FILE",
    "bundled_sunnybrook",
    "load_sunnybrook",
]

REASON_UNREADABLE_DICOM = "unreadable_dicom"
"""The DICOM file cannot be parsed, or its pixel data cannot be decoded into a 2-D image."""
REASON_NO_PIXEL_DATA = "no_pixel_data"
"""The DICOM file has no pixel data element."""
REASON_NO_PIXEL_SPACING = "no_pixel_spacing"
"""The DICOM file has no valid ``PixelSpacing`` (two positive numbers)."""
REASON_CONTOUR_WITHOUT_IMAGE = "contour_without_image"
"""An i-contour file whose DICOM image is missing."""
REASON_IMAGE_WITHOUT_CONTOUR = "image_without_contour"
"""A DICOM image without an i-contour file: not annotated (not read)."""
REASON_UNREADABLE_CONTOUR = "unreadable_contour"
"""A contour file with a line that is not ``x y``, or non-finite coordinates."""
REASON_TOO_FEW_POINTS = "contour_too_few_points"
"""A contour file with fewer than 3 points."""
REASON_NO_LV = "no_lv"
"""A contour that encloses no pixel centre: the slice has no LV."""
REASON_NOT_IN_LINK_CSV = "patient_not_in_link_csv"
"""A DICOM of a patient folder that ``link.csv`` does not list."""
REASON_UNRECOGNISED_FILE = "unrecognised_file"
"""A file whose name does not follow the layout."""

_LAYOUT = (
    "expected link.csv (patient_id,original_id), dicoms/<patient_id>/<n>.dcm and "
    "contourfiles/<original_id>/i-contours/IM-0001-<nnnn>-icontour-manual.txt"
)
_DICOM_NAME = re.compile(r"^(\d+)\.dcm$")
_CONTOUR_NAME = re.compile(r"^IM-0001-(\d{4})-icontour-manual\.txt$")


def bundled_sunnybrook() -> Path:
    """Path of the Sunnybrook sample shipped with the example (3 patients, 56 slices, CC0).

    The sample lives next to the package source, in ``examples/lv_segmentation/data/``, so it is
    found from an editable install or a source checkout.

    Raises:
        FileNotFoundError: if the sample is not there (e.g. a wheel install); pass the data
            directory explicitly then.

    Example:
        >>> (bundled_sunnybrook() / "link.csv").is_file()
        True
    """
    path = Path(__file__).resolve().parents[2] / "data" / "sunnybrook-sample"
    if not (path / "link.csv").is_file():
        raise FileNotFoundError(
            f"the bundled Sunnybrook sample is missing: expected it at {path}. It ships in the "
            "source tree (examples/lv_segmentation/data/sunnybrook-sample); install lvseg "
            "editable from a checkout, or pass data_dir= pointing to a Sunnybrook folder"
        )
    return path


def load_sunnybrook(
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[Slice], LoadReport]:
    """Load every annotated slice: image, filled endocardial mask and pixel spacing.

    Args:
        data_dir: folder in the layout of the module docstring; ``None`` uses
            :func:`bundled_sunnybrook`.

    Returns:
        ``(slices, report)``: slices sorted by patient id then image number, each with
        ``spacing`` from the DICOM ``PixelSpacing`` (row, column), ``source`` the DICOM path and
        ``extras`` ``{"image_number": int, "original_id": str, "contour": (P, 2) float64 (x, y),
        "contour_path": str}``; the report counts every skipped file under a ``REASON_*`` key.

    Raises:
        FileNotFoundError: if ``data_dir``, ``link.csv``, ``dicoms/`` or ``contourfiles/`` is
            missing.
        ValueError: if ``data_dir`` is empty, ``link.csv`` is malformed or lists no patient, or
            the folder holds no DICOM and no contour file.

    Example:
        >>> slices, report = load_sunnybrook()
        >>> len(slices), report.n_skipped, slices[0].patient_id, slices[0].shape
        (56, 0, 'SCD0000101', (256, 256))
    """
    root = bundled_sunnybrook() if data_dir is None else Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"Sunnybrook data directory {root} does not exist; {_LAYOUT}")
    if not any(root.iterdir()):
        raise ValueError(f"Sunnybrook data directory {root} is empty; {_LAYOUT}")
    link = _read_link_csv(root / "link.csv")
    for folder in ("dicoms", "contourfiles"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"{root} has no {folder}/ folder; {_LAYOUT}")
    report = LoadReport(str(root))

    images: dict[tuple[str, int], Path] = {}
    for patient_dir in _visible(root / "dicoms"):
        if not patient_dir.is_dir():
            report.skip(REASON_UNRECOGNISED_FILE, str(patient_dir),
                        f"{patient_dir}: not a patient folder (dicoms/ should hold folders)")
            continue
        for path in _visible(patient_dir):
            match = _DICOM_NAME.match(path.name)
            if match is None:
                report.skip(REASON_UNRECOGNISED_FILE, str(path),
                            f"{path}: name does not match <n>.dcm")
            elif patient_dir.name not in link:
                report.skip(REASON_NOT_IN_LINK_CSV, str(path),
                            f"{path}: patient {patient_dir.name} is not listed in link.csv")
            else:
                images[(patient_dir.name, int(match.group(1)))] = path

    contours: dict[tuple[str, int], Path] = {}
    for patient_id, original_id in link.items():
        folder = root / "contourfiles" / original_id / "i-contours"
        for path in _visible(folder) if folder.is_dir() else []:
            match = _CONTOUR_NAME.match(path.name)
            if match is None:
                report.skip(REASON_UNRECOGNISED_FILE, str(path),
                            f"{path}: name does not match IM-0001-<nnnn>-icontour-manual.txt")
            else:
                contours[(patient_id, int(match.group(1)))] = path

    if not images and not contours and not report.skipped:
        raise ValueError(f"{root} holds no DICOM and no contour file; {_LAYOUT}")

    for key in sorted(set(images) - set(contours)):
        report.skip(REASON_IMAGE_WITHOUT_CONTOUR, str(images[key]),
                    f"{images[key]}: no i-contour file for image {key[1]} (not annotated)")
    slices = []
    for key in sorted(contours):
        patient_id, number = key
        contour_path = contours[key]
        if key not in images:
            report.skip(REASON_CONTOUR_WITHOUT_IMAGE, str(contour_path),
                        f"{contour_path}: no image dicoms/{patient_id}/{number}.dcm")
            continue
        item = _load_slice(images[key], contour_path, patient_id, number, link[patient_id], report)
        if item is not None:
            slices.append(item)
            report.add_loaded()
    return slices, report


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _read_link_csv(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} has no link.csv; {_LAYOUT}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"patient_id", "original_id"} <= set(reader.fieldnames):
            raise ValueError(
                f"{path} must have the columns patient_id,original_id; got {reader.fieldnames}"
            )
        link: dict[str, str] = {}
        for row in reader:
            patient_id, original_id = row["patient_id"].strip(), row["original_id"].strip()
            if patient_id in link:
                raise ValueError(f"{path} lists patient {patient_id} twice")
            link[patient_id] = original_id
    if not link:
        raise ValueError(f"{path} lists no patient; {_LAYOUT}")
    return link


def _load_slice(
    dicom_path: Path,
    contour_path: Path,
    patient_id: str,
    number: int,
    original_id: str,
    report: LoadReport,
) -> Slice | None:
    try:
        points = read_contour(contour_path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        report.skip(REASON_UNREADABLE_CONTOUR, str(contour_path), f"{contour_path}: {err}")
        return None
    if len(points) < 3:
        report.skip(REASON_TOO_FEW_POINTS, str(contour_path),
                    f"{contour_path}: a contour needs at least 3 points; got {len(points)}")
        return None
    if not np.isfinite(points).all():
        report.skip(REASON_UNREADABLE_CONTOUR, str(contour_path),
                    f"{contour_path}: contour holds NaN or inf coordinates")
        return None
    import pydicom  # here: only loading reads DICOM (importing it costs lvseg's start-up)

    try:
        ds = pydicom.dcmread(dicom_path)
    except Exception as err:  # pydicom raises many types for damaged files
        report.skip(REASON_UNREADABLE_DICOM, str(dicom_path),
                    f"{dicom_path}: unreadable DICOM ({type(err).__name__}: {err})")
        return None
    if "PixelData" not in ds:
        report.skip(REASON_NO_PIXEL_DATA, str(dicom_path), f"{dicom_path}: DICOM has no pixel data")
        return None
    reason = REASON_UNREADABLE_DICOM
    try:  # each step's message names the file
        image = dicom_pixels(ds, dicom_path)
        if image.ndim != 2:
            raise ValueError(f"{dicom_path}: expected a 2-D image; got pixel data of shape "
                             f"{image.shape}")
        reason = REASON_NO_PIXEL_SPACING
        spacing = dicom_spacing(ds, dicom_path)
    except ValueError as err:
        report.skip(reason, str(dicom_path), str(err))
        return None
    mask = polygon_to_mask(points, image.shape)
    if not mask.any():
        report.skip(REASON_NO_LV, str(contour_path),
                    f"{contour_path}: the contour encloses no pixel centre of the "
                    f"{image.shape[0]}x{image.shape[1]} image (slice without LV)")
        return None
    return Slice(
        image=image,
        mask=mask,
        spacing=spacing,
        patient_id=patient_id,
        source=str(dicom_path),
        extras={
            "image_number": number,
            "original_id": original_id,
            "contour": points,
            "contour_path": str(contour_path),
        },
    )
