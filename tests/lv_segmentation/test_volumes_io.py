"""Reading volumes: NIfTI 3-D/4-D axes and zooms, DICOM series geometry and cine order, refusals."""

from __future__ import annotations

import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lvseg.volumes import Volume, read_dicom_series, read_nifti, read_volume


def _nifti(path: Path, data: np.ndarray, zooms: tuple[float, ...]) -> Path:
    image = nib.Nifti1Image(data, np.diag([*zooms[:3], *[1.0] * (4 - len(zooms[:3]))]))
    image.header.set_zooms(zooms)
    nib.save(image, str(path))
    return path


def test_a_4d_nifti_becomes_t_z_h_w_with_the_acdc_loaders_axes(tmp_path: Path) -> None:
    data = np.arange(5 * 6 * 3 * 2, dtype=np.float32).reshape(5, 6, 3, 2)  # (X, Y, Z, T)
    volume = read_nifti(_nifti(tmp_path / "cine.nii.gz", data, (1.25, 1.5, 8.0, 30.0)))
    assert volume.array.shape == (2, 3, 5, 6)
    # element (t, z, row, col) is voxel (row, col, z, t): the ACDC loader's slice volume[:, :, z]
    assert volume.array[1, 2, 4, 5] == data[4, 5, 2, 1]
    np.testing.assert_array_equal(volume.array[0, 1], data[:, :, 1, 0])
    assert volume.spacing == (8.0, 1.25, 1.5)
    assert volume.voxel_ml == pytest.approx(8.0 * 1.25 * 1.5 / 1000)
    assert volume.header is not None and volume.affine.shape == (4, 4)


def test_a_3d_nifti_is_one_frame(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((7, 8, 4)).astype(np.float32)
    volume = read_volume(_nifti(tmp_path / "f.nii", data, (1.0, 1.0, 10.0)))
    assert volume.array.shape == (1, 4, 7, 8) and volume.frames == (0,)
    np.testing.assert_array_equal(volume.array[0, 3], data[:, :, 3])


@pytest.mark.parametrize(("zooms", "text"), [
    ((1.0, 1.0, 0.01), "distance between slices must be between 0.5 and 30 mm"),
    ((1.0, 1.0, 200.0), "got 200 mm"),
    ((0.01, 1.0, 10.0), "in-plane spacing must be between 0.1 and 10 mm per pixel"),
])
def test_absurd_spacing_is_refused_naming_the_file(tmp_path: Path, zooms, text) -> None:
    path = _nifti(tmp_path / "bad.nii.gz", np.ones((8, 8, 3), np.float32), zooms)
    with pytest.raises(ValueError, match=text) as info:
        read_volume(path)
    assert str(path) in str(info.value)


def test_non_finite_voxels_are_refused_naming_the_file(tmp_path: Path) -> None:
    data = np.ones((8, 8, 3), np.float32)
    data[1, 2, 0] = np.nan
    path = _nifti(tmp_path / "nan.nii.gz", data, (1.0, 1.0, 10.0))
    with pytest.raises(ValueError, match=r"nan.nii.gz has 1 of 192 pixels that are NaN"):
        read_volume(path)


def test_other_files_and_dimensions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"a.png: a volume must be a NIfTI file .* or a folder"):
        read_volume(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError, match="missing.nii.gz does not exist"):
        read_volume(tmp_path / "missing.nii.gz")
    path = _nifti(tmp_path / "2d.nii", np.ones((8, 8), np.float32), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"2d.nii: expected a 3-D .* 4-D .*; got shape \(8, 8\)"):
        read_volume(path)
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(ValueError, match="junk.nii.gz is not a readable NIfTI volume"):
        read_volume(tmp_path / "junk.nii.gz")
    with pytest.raises(ValueError, match=r"demo: volume must have shape \(T, Z, H, W\)"):
        Volume(np.zeros((3, 4, 5)), (10, 1, 1), "demo")


# ------------------------------------------------------------------ DICOM series
ROW_DIR = np.array([1.0, 0.0, 0.0])
COL_DIR = np.array([0.0, np.cos(0.3), -np.sin(0.3)])  # an oblique short axis
ORIGIN = np.array([-40.0, 12.0, 7.5])


def _dicom(path: Path, pixels: np.ndarray, position, trigger: float | None, instance: int,
           spacing=(1.25, 1.5), orientation=None) -> None:
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = pixels.astype(np.int16).tobytes()
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in (orientation if orientation is not None
                                                    else [*ROW_DIR, *COL_DIR])]
    ds.PixelSpacing = list(spacing)
    ds.InstanceNumber = instance
    if trigger is not None:
        ds.TriggerTime = trigger
    ds.RescaleSlope, ds.RescaleIntercept = 2, -5
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def _series(folder: Path, n_z: int = 3, n_t: int = 4, dz: float = 8.0) -> np.ndarray:
    """Files in shuffled names and instance numbers; pixel value = 10 * t + z (plus a ramp)."""
    folder.mkdir()
    normal = np.cross(ROW_DIR, COL_DIR)
    ramp = np.arange(5 * 6).reshape(5, 6)
    items = [(t, z) for t in range(n_t) for z in range(n_z)]
    names = random.Random(0).sample(range(1000), len(items))
    instances = random.Random(1).sample(range(1, 100), len(items))
    expected = np.zeros((n_t, n_z, 5, 6))
    for (t, z), name, instance in zip(items, names, instances):
        pixels = 10 * t + z + 100 * ramp
        # slices listed from the far end, so sorting by position reverses the z order
        position = ORIGIN + (n_z - 1 - z) * dz * normal
        _dicom(folder / f"IM{name:04d}", pixels, position, 33.0 * t, instance)
        expected[t, n_z - 1 - z] = 2 * pixels - 5
    return expected


def test_a_dicom_cine_is_sorted_by_position_and_trigger_time(tmp_path: Path) -> None:
    expected = _series(tmp_path / "cine")
    (tmp_path / "cine" / "README.txt").write_text("not dicom")
    volume = read_dicom_series(tmp_path / "cine")
    assert volume.array.shape == (4, 3, 5, 6)
    np.testing.assert_array_equal(volume.array, expected)  # rescale slope/intercept applied
    assert volume.spacing == pytest.approx((8.0, 1.25, 1.5))
    assert any("README.txt: skipped, not a DICOM file" in note for note in volume.notes)


def test_the_dicom_affine_follows_the_standards_pixel_position_formula(tmp_path: Path) -> None:
    _series(tmp_path / "cine", n_t=1)
    volume = read_volume(tmp_path / "cine")
    normal = np.cross(ROW_DIR, COL_DIR)
    for row, col, k in [(0, 0, 0), (4, 5, 2), (1, 3, 1)]:
        # DICOM PS3.3 C.7.6.2.1.1: P = S + X * dcol * i + Y * drow * j (i column, j row), in LPS;
        # slice k (sorted along the normal) has S = ORIGIN + k * dz * normal
        lps = ORIGIN + k * 8.0 * normal + ROW_DIR * 1.5 * col + COL_DIR * 1.25 * row
        ras = lps * np.array([-1, -1, 1])
        np.testing.assert_allclose((volume.affine @ [row, col, k, 1])[:3], ras, atol=1e-9)


def test_dicom_series_problems_are_named(tmp_path: Path) -> None:
    _series(tmp_path / "a", n_t=2)
    next(iter(sorted((tmp_path / "a").iterdir()))).unlink()
    with pytest.raises(ValueError, match=r"a: every slice position needs the same number of "
                                         r"cine frames; got .*: 1"):
        read_dicom_series(tmp_path / "a")
    folder = tmp_path / "b"
    folder.mkdir()
    normal = np.cross(ROW_DIR, COL_DIR)
    for z, offset in enumerate([0.0, 8.0, 24.0]):
        _dicom(folder / f"{z}.dcm", np.ones((5, 6)), ORIGIN + offset * normal, None, z + 1)
    with pytest.raises(ValueError, match=r"b: slices are not evenly spaced \(gaps 8.00, 16.00"):
        read_dicom_series(folder)
    _dicom(folder / "3.dcm", np.ones((5, 6)), ORIGIN, None, 9, orientation=[0, 1, 0, 1, 0, 0])
    with pytest.raises(ValueError, match=r"3.dcm: ImageOrientationPatient differs from .*0.dcm"):
        read_dicom_series(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty holds no DICOM image"):
        read_dicom_series(tmp_path / "empty")


def test_atomic_write_with_keeps_a_compressed_suffix_for_nibabel(tmp_path):
    """The temporary file of ``x.nii.gz`` ends in ``.nii.gz``: nibabel picks the format from it."""
    import nibabel as nib

    from lvseg.rundir import atomic_write_with

    target = tmp_path / "mask.nii.gz"
    image = nib.Nifti1Image(np.ones((4, 4, 2), dtype=np.uint8), np.eye(4))
    atomic_write_with(target, lambda tmp: nib.save(image, str(tmp)))
    assert np.asarray(nib.load(str(target)).dataobj).sum() == 32
    assert [p.name for p in tmp_path.iterdir()] == ["mask.nii.gz"]
