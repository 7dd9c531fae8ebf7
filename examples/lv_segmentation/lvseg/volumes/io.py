r"""Reading short-axis volumes: 3-D and 4-D NIfTI (nibabel) and DICOM series folders (pydicom).

Every reader returns a :class:`Volume`: intensities of shape :math:`(T, Z, H, W)` (cine frames,
short-axis slices, rows, columns), the voxel size ``(dz, dy, dx)`` in mm and, to write results
back in the input's geometry, a voxel-to-world affine (and the nibabel header for NIfTI).

Axes follow the ACDC loader (:mod:`lvseg.data.acdc`), so a slice looks as it did in training:

- NIfTI ``(X, Y, Z[, T])``: ``H`` is voxel axis 0, ``W`` axis 1, ``Z`` axis 2, ``T`` axis 3;
  spacing ``(zooms[2], zooms[0], zooms[1])`` from the header.
- DICOM: ``H`` is the image rows, ``W`` the columns (``PixelSpacing`` is ``(dy, dx)``). Slices
  are sorted by their position along the slice normal
  (:math:`n = r \times c` of ``ImageOrientationPatient``), ``dz`` is the distance between
  neighbouring positions, and the images at one position are the cine frames, in the order of
  ``TriggerTime`` (``InstanceNumber`` where a file lacks it). The affine maps
  ``(row, column, slice)`` to RAS millimetres, like a NIfTI affine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lvseg.data.readers import MAX_VOXELS, read_nifti_file
from lvseg.data.types import check_pixels, check_spacing

__all__ = ["MAX_VOXELS", "SLICE_SPACING_RANGE_MM", "Volume", "check_volume_spacing",
           "read_dicom_series", "read_nifti", "read_volume"]

#: Distance between short-axis slices (mm) lvseg accepts: cine MRI has about 5-10 mm; a value far
#: outside is a broken header or a folder mixing series, and would make every volume wrong.
SLICE_SPACING_RANGE_MM = (0.5, 30.0)


@dataclass(frozen=True, eq=False)
class Volume:
    r"""A short-axis image volume (cine or single frame) with its geometry.

    Args:
        array: intensities, converted to ``float32`` of shape :math:`(T, Z, H, W)`.
        spacing: voxel size ``(dz, dy, dx)`` in mm: between slices, rows, columns.
        source: the file or folder it was read from (named in every message).
        affine: :math:`4 \times 4` map from voxel ``(row, column, slice)`` to world millimetres,
            or ``None`` when unknown.
        header: the ``nibabel`` header of a NIfTI input (written back with the masks), else
            ``None``.
        frames: a number per frame (``T`` of them): ACDC's 1-based frame numbers, or
            ``0 .. T-1``.
        notes: what the reader skipped or assumed (files that are not DICOM, ...).

    Raises:
        ValueError: naming ``source``, if the array is not 4-D, has NaN/inf voxels
            (:func:`~lvseg.data.types.check_pixels`), the in-plane spacing is outside
            :data:`~lvseg.data.types.SPACING_RANGE_MM` or ``dz`` outside
            :data:`SLICE_SPACING_RANGE_MM`.

    Example:
        >>> v = Volume(np.zeros((2, 3, 4, 5)), (10.0, 1.5, 1.5), "demo")
        >>> v.n_frames, v.n_slices, v.voxel_ml, v.frames
        (2, 3, 0.0225, (0, 1))
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    source: str
    affine: np.ndarray | None = None
    header: Any = None
    frames: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        array = np.ascontiguousarray(self.array, dtype=np.float32)
        source = str(self.source)
        if array.ndim != 4 or 0 in array.shape:
            raise ValueError(f"{source}: volume must have shape (T, Z, H, W); got {array.shape}")
        check_pixels(array, source)
        object.__setattr__(self, "spacing", check_volume_spacing(self.spacing, source))
        frames = tuple(int(f) for f in self.frames) or tuple(range(array.shape[0]))
        if len(frames) != array.shape[0]:
            raise ValueError(f"{source}: frames must number the {array.shape[0]} frames; got "
                             f"{len(frames)} numbers")
        if self.affine is not None:
            affine = np.asarray(self.affine, dtype=np.float64)
            if affine.shape != (4, 4) or not np.isfinite(affine).all():
                raise ValueError(f"{source}: affine must be a finite 4 x 4 matrix; got shape "
                                 f"{affine.shape}")
            object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

    @property
    def n_frames(self) -> int:
        """Number of cine frames ``T``."""
        return int(self.array.shape[0])

    @property
    def n_slices(self) -> int:
        """Number of short-axis slices ``Z``."""
        return int(self.array.shape[1])

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in millilitres (:math:`dz \\, dy \\, dx / 1000`)."""
        return math.prod(self.spacing) / 1000.0

    def frame(self, t: int) -> np.ndarray:
        """The 3-D frame ``t`` (an index ``0 .. T-1``), shape :math:`(Z, H, W)`."""
        return self.array[t]


def check_volume_spacing(spacing: object, name: str) -> tuple[float, float, float]:
    """``spacing`` as ``(dz, dy, dx)`` mm: in-plane by :func:`~lvseg.data.types.check_spacing`.

    ``dz`` must lie in :data:`SLICE_SPACING_RANGE_MM`.

    Raises:
        ValueError: naming ``name`` (the file), the range and the value.

    Example:
        >>> check_volume_spacing((10, 1.5, 1.25), "demo")
        (10.0, 1.5, 1.25)
    """
    try:
        dz, dy, dx = (float(v) for v in spacing)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: spacing must be (dz, dy, dx) in mm; got {spacing!r}") from None
    dy, dx = check_spacing((dy, dx), f"{name}: in-plane spacing")
    low, high = SLICE_SPACING_RANGE_MM
    if not (math.isfinite(dz) and low <= dz <= high):
        raise ValueError(
            f"{name}: the distance between slices must be between {low:g} and {high:g} mm "
            f"(short-axis cine MRI: about 5-10 mm); got {dz:g} mm: check the header's third zoom "
            "or the slices' ImagePositionPatient"
        )
    return (dz, dy, dx)


def read_nifti(path: str | os.PathLike[str]) -> Volume:
    """Read a 3-D ``(X, Y, Z)`` or 4-D ``(X, Y, Z, T)`` NIfTI volume (``.nii`` or ``.nii.gz``).

    Returns:
        A :class:`Volume` with the file's affine and header; axes as in the module docstring.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming the file, if nibabel cannot read it, it is not 3-D or 4-D, has more
            than :data:`MAX_VOXELS` voxels, or the checks of :class:`Volume` fail.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"volume {path} does not exist")
    nifti = read_nifti_file(path, ndims=(3, 4))
    data = nifti.array if nifti.array.ndim == 4 else nifti.array[..., None]
    row_mm, col_mm, dz = nifti.zooms
    return Volume(data.transpose(3, 2, 0, 1), (dz, row_mm, col_mm), str(path), affine=nifti.affine,
                  header=nifti.header)


def read_dicom_series(folder: str | os.PathLike[str]) -> Volume:
    """Read a folder of single-frame DICOM files as one short-axis series (cine or not).

    Files that pydicom does not recognise as DICOM are skipped and listed in ``notes``.

    Raises:
        FileNotFoundError: if ``folder`` is not a folder.
        ValueError: naming the folder or file: no DICOM image, missing geometry
            (``ImagePositionPatient``, ``ImageOrientationPatient``, ``PixelSpacing``), mixed
            orientations or image sizes, positions with different numbers of frames, or
            unevenly spaced slices.
    """
    from lvseg.volumes.dicom import read_series

    return read_series(Path(folder))


def read_volume(path: str | os.PathLike[str]) -> Volume:
    """Read a NIfTI file (``.nii``, ``.nii.gz``) or a DICOM series folder as a :class:`Volume`.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: naming ``path``, if it is neither, or the reader refuses it.

    Example:
        >>> volume = read_volume("patient001_4d.nii.gz")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    if path.name.lower().endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    if not path.exists():
        raise FileNotFoundError(f"volume {path} does not exist")
    raise ValueError(f"{path}: a volume must be a NIfTI file (.nii, .nii.gz) or a folder holding "
                     "one DICOM series; for one 2-D DICOM slice use lvseg predict --center")
