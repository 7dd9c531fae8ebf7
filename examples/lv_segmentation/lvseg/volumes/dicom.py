"""A DICOM series folder as a :class:`~lvseg.volumes.io.Volume` (geometry rules in that module).

Only :func:`read_series` is used from outside, through :func:`lvseg.volumes.read_dicom_series`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lvseg.data.readers import check_size, dicom_pixels, dicom_spacing
from lvseg.volumes.io import Volume

__all__ = ["read_series"]

#: Slices closer than this along the normal (mm) are one position (frames of a cine).
POSITION_TOLERANCE_MM = 0.01
#: Largest relative difference between slice gaps accepted as "evenly spaced".
GAP_TOLERANCE = 0.05
_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")


def read_series(folder: Path) -> Volume:
    """Read every DICOM image of ``folder`` (not its subfolders) as one series.

    Raises:
        FileNotFoundError, ValueError: see :func:`lvseg.volumes.read_dicom_series`.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not folder.is_dir():
        raise FileNotFoundError(f"DICOM series folder {folder} does not exist")
    datasets: list[tuple[Path, Any]] = []
    notes: list[str] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, OSError) as error:
            notes.append(f"{path}: skipped, not a DICOM file ({type(error).__name__})")
            continue
        if "Rows" not in ds:  # DICOMDIR, structured reports, ...: no image
            notes.append(f"{path}: skipped, a DICOM file without an image")
            continue
        missing = [key for key in _GEOMETRY if key not in ds]
        if missing:
            raise ValueError(f"{path}: a DICOM image of a series needs {', '.join(missing)} to be "
                             "placed in the volume; export the series with its geometry")
        datasets.append((path, ds))
    if not datasets:
        raise ValueError(f"{folder} holds no DICOM image (a volume folder holds one short-axis "
                         f"series, one file per slice and frame){_first(notes)}")
    first_path, first = datasets[0]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    size = (int(first.Rows), int(first.Columns))
    pixel = dicom_spacing(first, first_path)
    for path, ds in datasets[1:]:
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, float), orientation, atol=1e-4):
            raise ValueError(f"{path}: ImageOrientationPatient differs from {first_path}'s; the "
                             f"folder {folder} must hold one series (one orientation)")
        if (int(ds.Rows), int(ds.Columns)) != size or not np.allclose(
                dicom_spacing(ds, path), pixel):
            raise ValueError(f"{path}: image size or PixelSpacing differs from {first_path}'s; "
                             f"the folder {folder} must hold one series")
    row_dir, col_dir = orientation[:3], orientation[3:]  # along a row (x), along a column (y)
    normal = np.cross(row_dir, col_dir)
    positions = [float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal))
                 for _, ds in datasets]
    groups = _group_positions(datasets, positions)
    counts = {len(g) for _, g in groups}
    if len(counts) != 1:
        detail = ", ".join(f"{p:.2f} mm: {len(g)}" for p, g in groups)
        raise ValueError(f"{folder}: every slice position needs the same number of cine frames; "
                         f"got {detail} (a missing or extra file?)")
    dz = _slice_gap(folder, [p for p, _ in groups], first)
    check_size((len(datasets), *size), str(folder))
    array = np.empty((counts.pop(), len(groups), *size), dtype=np.float32)
    for z, (_, group) in enumerate(groups):
        for t, (path, _) in enumerate(group):
            array[t, z] = _pixels(path, size)
    lps = np.eye(4)
    lps[:3, 0] = col_dir * pixel[0]  # next row: down a column, PixelSpacing[0] apart
    lps[:3, 1] = row_dir * pixel[1]
    lps[:3, 2] = normal * dz
    lps[:3, 3] = np.asarray(groups[0][1][0][1].ImagePositionPatient, dtype=np.float64)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM's LPS to NIfTI's RAS
    return Volume(array, (dz, *pixel), str(folder), affine=affine,
                  notes=tuple(notes))


def _first(notes: list[str]) -> str:
    return f"; {notes[0]}" + (f" and {len(notes) - 1} more" if len(notes) > 1 else "") if notes \
        else ""


def _group_positions(datasets: list[tuple[Path, Any]], positions: list[float]
                     ) -> list[tuple[float, list[tuple[Path, Any]]]]:
    """``[(position, [(path, ds) of its frames in time order]), ...]``, base to apex order."""
    order = np.argsort(positions, kind="stable")
    groups: list[tuple[float, list[tuple[Path, Any]]]] = []
    for i in order:
        if groups and positions[i] - groups[-1][0] <= POSITION_TOLERANCE_MM:
            groups[-1][1].append(datasets[i])
        else:
            groups.append((positions[i], [datasets[i]]))
    for _, group in groups:
        by_time = all("TriggerTime" in ds for _, ds in group)
        group.sort(key=lambda item: (float(item[1].TriggerTime) if by_time else 0.0,
                                     int(getattr(item[1], "InstanceNumber", 0) or 0),
                                     item[0].name))
    return groups


def _slice_gap(folder: Path, positions: list[float], first: Any) -> float:
    if len(positions) == 1:
        for key in ("SpacingBetweenSlices", "SliceThickness"):
            if key in first and first.get(key) not in (None, ""):
                return float(first.get(key))
        raise ValueError(f"{folder}: one slice position and no SliceThickness: the slice "
                         "thickness is needed for volumes in mL")
    gaps = np.diff(positions)
    dz = float(np.median(gaps))
    if np.abs(gaps - dz).max() > GAP_TOLERANCE * dz:
        raise ValueError(f"{folder}: slices are not evenly spaced (gaps "
                         f"{', '.join(f'{g:.2f}' for g in gaps)} mm); a missing slice or two "
                         "series in one folder?")
    return dz


def _pixels(path: Path, size: tuple[int, int]) -> np.ndarray:
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many kinds for damaged files
        raise ValueError(f"{path}: cannot read the DICOM file ({type(error).__name__}: "
                         f"{error})") from None
    image = dicom_pixels(ds, path)
    if image.shape != size:
        raise ValueError(f"{path}: a single-frame {size} image was expected; got pixel data of "
                         f"shape {image.shape} (multi-frame DICOM is not supported)")
    return image
