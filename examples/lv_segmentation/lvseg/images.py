"""Reading the images ``lvseg predict`` segments: DICOM, NIfTI or ``.npy`` slices.

:func:`read_image` reads one 2-D slice and its pixel spacing; :func:`check_slice_inputs` refuses
volumes (folders, 4-D cines) where ``--center`` asks for single 2-D slices.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lvseg.data.readers import dicom_pixels, dicom_spacing, nifti_shape, read_nifti_file

__all__ = ["check_slice_inputs", "read_image"]


def check_slice_inputs(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Refuse volumes where ``--center`` asks for single 2-D slices (a folder or a 4-D NIfTI).

    Raises:
        ValueError: naming the input and the fix (leave ``--center`` out), or a NIfTI file
            whose header cannot be read.
    """
    for path in paths:
        kind = None
        if Path(path).is_dir():
            kind = "a folder (a DICOM series or a patient)"
        elif str(path).lower().endswith((".nii", ".nii.gz")) and Path(path).is_file():
            shape = nifti_shape(path)
            if len(shape) > 3 and any(s > 1 for s in shape[3:]):
                kind = f"a 4-D cine of shape {tuple(shape)}"
        if kind is not None:
            raise ValueError(f"--center places the star in one 2-D slice, but {path} is {kind}; "
                             "leave --center out to segment every slice with the LV found "
                             "automatically")


def read_image(
    path: str | os.PathLike[str], *, slice_index: int | None = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Read one 2-D slice: DICOM (``.dcm`` or any file pydicom reads), NIfTI, or ``.npy``.

    Returns:
        ``(image float32 (H, W), spacing (row_mm, col_mm) or None)`` — ``.npy`` has no spacing.
        NIfTI slices are ``volume[:, :, z]`` (row = voxel axis 0), as the ACDC loader reads them.

    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    name = path.name.lower()
    if slice_index is not None and not name.endswith((".nii", ".nii.gz")):
        raise ValueError(
            f"--slice picks a slice of a 3-D NIfTI volume; {path} is not one (a .npy or DICOM "
            "file holds one 2-D slice): leave --slice out for it"
        )
    if name.endswith(".npy"):
        image = np.load(path, allow_pickle=False)
        if image.dtype == bool or image.dtype.kind not in "iuf":
            raise ValueError(
                f"{path} holds an array of dtype {image.dtype}; lvseg needs the image's "
                "intensities (integers or floats), not a mask or other data"
            )
        spacing = None
    elif name.endswith((".nii", ".nii.gz")):
        nifti = read_nifti_file(path, ndims=(2, 3))
        data = nifti.array
        if data.ndim == 3:
            if slice_index is None and data.shape[2] != 1:
                raise ValueError(
                    f"{path} is a volume with {data.shape[2]} slices; pick one with --slice Z"
                )
            z = 0 if slice_index is None else slice_index
            if not 0 <= z < data.shape[2]:
                raise ValueError(f"--slice must be in [0, {data.shape[2] - 1}]; got {z}")
            data = data[:, :, z]
        image, spacing = data, nifti.zooms[:2]
    else:
        import pydicom

        try:
            ds = pydicom.dcmread(path)
        except Exception as error:  # pydicom raises many kinds for damaged files
            raise ValueError(
                f"{path} is not a readable DICOM, NIfTI (.nii, .nii.gz) or .npy image ({error})"
            ) from None
        image = dicom_pixels(ds, path)
        spacing = dicom_spacing(ds, path, required=False)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"{path} must hold a 2-D slice; got shape {image.shape}")
    return image, spacing
