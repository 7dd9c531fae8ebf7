"""Reading image files, one reader per format: NIfTI voxels and zooms, DICOM pixels and spacing.

Every lvseg reader of files goes through these functions: the ACDC and Sunnybrook loaders,
``lvseg predict``'s slices (:mod:`lvseg.images`) and the volumes (:mod:`lvseg.volumes.io`). So a
file's size is bounded by :data:`MAX_VOXELS` before its voxels are allocated, and every message
names the file. The range checks of spacings and pixels stay with the records that hold them
(:func:`~lvseg.data.types.check_spacing`, :func:`~lvseg.data.types.check_pixels`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from lvseg.data.types import positive_sizes

__all__ = ["MAX_VOXELS", "NiftiFile", "check_size", "dicom_pixels", "dicom_spacing",
           "nifti_shape", "read_nifti_file"]

#: Most voxels (all frames together) lvseg reads into memory: checked before allocating.
MAX_VOXELS = 2**28

_DIMS = {2: "2-D (X, Y)", 3: "3-D (X, Y, Z)", 4: "4-D (X, Y, Z, T)"}


def check_size(shape: tuple[int, ...], name: str) -> None:
    """Refuse a ``shape`` of more than :data:`MAX_VOXELS` voxels before it is allocated.

    Raises:
        ValueError: ``"{name}: N voxels (shape ...) exceed ..."``.
    """
    if math.prod(shape) > MAX_VOXELS:
        raise ValueError(f"{name}: {math.prod(shape)} voxels (shape {shape}) exceed the "
                         f"{MAX_VOXELS} lvseg reads; is it a short-axis cine?")


@dataclass(frozen=True, eq=False)
class NiftiFile:
    """What :func:`read_nifti_file` read from one NIfTI file.

    Args:
        array: the voxels, ``float32`` (``int16`` for label maps), axes ``(X, Y[, Z[, T]])``.
        zooms: the header's first three zooms (``1.0`` for missing ones), in mm.
        affine: the voxel-to-world affine.
        header: a copy of the nibabel header.
    """

    array: np.ndarray
    zooms: tuple[float, float, float]
    affine: np.ndarray
    header: Any


def read_nifti_file(
    path: str | os.PathLike[str], *, ndims: tuple[int, ...] = (3, 4), labels: bool = False
) -> NiftiFile:
    """Read a NIfTI file (``.nii`` or ``.nii.gz``) whose voxel array has one of ``ndims`` axes.

    Trailing axes of length 1 beyond the third are dropped first (an ``(X, Y, Z, 1)`` file is
    3-D). The size is checked against :data:`MAX_VOXELS` before the voxels are read.

    Args:
        path: the file.
        ndims: the numbers of axes accepted (2, 3 or 4).
        labels: read a label map: values rounded to ``int16`` instead of ``float32``
            intensities.

    Raises:
        ValueError: naming the file, if nibabel cannot read it, it has another number of axes
            or too many voxels.
    """
    img = _load(path)
    shape = tuple(int(s) for s in img.shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in ndims:
        raise ValueError(f"{path}: expected a {' or '.join(_DIMS[n] for n in ndims)} volume; got "
                         f"shape {tuple(img.shape)}")
    check_size(shape, str(path))
    try:
        if labels:
            data = np.rint(np.asanyarray(img.dataobj)).astype(np.int16).reshape(shape)
        else:
            data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
        zooms = [float(z) for z in img.header.get_zooms()[:3]]
    except Exception as error:  # a truncated file fails only here
        raise _unreadable(path, error) from None
    zooms += [1.0] * (3 - len(zooms))
    return NiftiFile(data, (zooms[0], zooms[1], zooms[2]), img.affine, img.header.copy())


def nifti_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The voxel array shape of a NIfTI file, from its header (no voxel is read).

    Raises:
        ValueError: naming the file, if nibabel cannot read its header.
    """
    return tuple(int(s) for s in _load(path).shape)


def _load(path: str | os.PathLike[str]) -> Any:
    """The nibabel image of ``path`` (its header read, its voxels not yet)."""
    import nibabel as nib

    try:
        return nib.load(os.fspath(path))
    except Exception as error:  # nibabel raises many kinds for damaged files
        raise _unreadable(path, error) from None


def _unreadable(path: str | os.PathLike[str], error: Exception) -> ValueError:
    return ValueError(f"{path} is not a readable NIfTI volume ({type(error).__name__}: {error})")


def dicom_spacing(ds: Any, path: str | os.PathLike[str], *, required: bool = True
                  ) -> tuple[float, float] | None:
    """The DICOM ``PixelSpacing`` of dataset ``ds`` as ``(row_mm, col_mm)``.

    Args:
        ds: a pydicom dataset.
        path: its file (named in the message).
        required: if ``False``, a dataset without ``PixelSpacing`` gives ``None``.

    Raises:
        ValueError: naming the file, if ``PixelSpacing`` is not two positive numbers (or is
            missing and ``required``).
    """
    value = ds.get("PixelSpacing")
    if value is None and not required:
        return None
    spacing = positive_sizes(value, 2)
    if spacing is None:
        raise ValueError(f"{path}: DICOM has no valid PixelSpacing (row, column mm); got "
                         f"{value!r}")
    return spacing


def dicom_pixels(ds: Any, path: str | os.PathLike[str]) -> np.ndarray:
    """The decoded pixels of dataset ``ds`` as ``float32``, ``RescaleSlope``/``Intercept`` applied.

    Values beyond ``float32`` become infinite, which
    :func:`~lvseg.data.types.check_pixels` then refuses naming the file.

    Raises:
        ValueError: naming ``path``, if the pixel data cannot be decoded.
    """
    try:
        image = ds.pixel_array.astype(np.float32)
    except Exception as error:  # pixel handlers raise many kinds
        raise ValueError(f"{path}: cannot decode the pixel data ({type(error).__name__}: "
                         f"{error})") from None
    slope = float(ds.get("RescaleSlope") or 1)
    intercept = float(ds.get("RescaleIntercept") or 0)
    if (slope, intercept) != (1.0, 0.0):
        with np.errstate(over="ignore", invalid="ignore"):
            image = image * np.float32(slope) + np.float32(intercept)
    return image
