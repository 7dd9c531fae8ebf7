"""One reader per file format (``lvseg.data.readers``), shared by the ACDC and Sunnybrook loaders,
``lvseg predict``'s slices and the volumes: the same bounds and the same file-naming messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from lvseg.data import bundled_sunnybrook, load_acdc
from lvseg.data import readers
from lvseg.images import check_slice_inputs, read_image
from lvseg.volumes import read_volume
from lvseg_testing import edit_dicom


def _dicom(tmp_path: Path, **fields: object) -> Path:
    source = next((bundled_sunnybrook() / "dicoms" / "SCD0000101").glob("*.dcm"))
    path = tmp_path / "slice.dcm"
    shutil.copy(source, path)
    return edit_dicom(path, **fields)


def test_every_nifti_reader_bounds_the_size_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = tmp_path / "acdc" / "patient001"
    patient.mkdir(parents=True)
    data = np.ones((8, 8, 3), np.float32)
    for name in ("patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz"):
        nib.save(nib.Nifti1Image(data, np.diag([1.5, 1.5, 8.0, 1.0])), patient / name)
    monkeypatch.setattr(readers, "MAX_VOXELS", 100)
    image = patient / "patient001_frame01.nii.gz"
    expected = f"{image}: 192 voxels (shape (8, 8, 3)) exceed the 100 lvseg reads"
    with pytest.raises(ValueError) as info:
        read_volume(image)
    assert str(info.value).startswith(expected)  # the file named once (was twice)
    with pytest.raises(ValueError, match="192 voxels") as info:
        read_image(image, slice_index=0)
    assert str(info.value).startswith(expected)
    slices, report = load_acdc(tmp_path / "acdc")
    assert slices == [] and expected in report.messages("unreadable_nifti")[0]


def test_label_maps_are_rounded_to_int16(tmp_path: Path) -> None:
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(np.array([[[2.6, 0.2]]], np.float32), np.eye(4)), path)
    nifti = readers.read_nifti_file(path, labels=True)
    assert nifti.array.dtype == np.int16 and nifti.array.tolist() == [[[3, 0]]]
    assert nifti.zooms == (1.0, 1.0, 1.0)


def test_predict_reads_a_dicom_as_training_does(tmp_path: Path) -> None:
    """RescaleSlope/Intercept applied (was ignored by predict), PixelSpacing checked by name."""
    plain, _ = read_image(_dicom(tmp_path))
    scaled, spacing = read_image(_dicom(tmp_path, RescaleSlope="2", RescaleIntercept="-5"))
    np.testing.assert_array_equal(scaled, plain * 2 - 5)
    assert spacing == pytest.approx((1.367, 1.367), abs=1e-3)
    path = _dicom(tmp_path, PixelSpacing=[0, 1])
    with pytest.raises(ValueError, match=r"slice.dcm: DICOM has no valid PixelSpacing \(row, "
                       r"column mm\); got \[0.0, 1.0\]"):
        read_image(path)
    ds = pydicom.dcmread(path)
    del ds.PixelSpacing
    ds.save_as(path)
    assert read_image(path)[1] is None  # no spacing: predict's --spacing or the default


def test_a_damaged_nifti_is_named_by_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(b"not a nifti")
    expected = rf"{path} is not a readable NIfTI volume \(ImageFileError: "
    with pytest.raises(ValueError, match=expected):
        check_slice_inputs([path])  # was nibabel's own error, a traceback
    with pytest.raises(ValueError, match=expected):
        read_image(path)
    with pytest.raises(ValueError, match=expected):
        read_volume(path)
