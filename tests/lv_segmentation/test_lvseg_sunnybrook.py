"""Sunnybrook loader: the real bundled sample, and every bad-input case with its message."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from skimage.draw import polygon2mask

import lvseg.data.sunnybrook as sb
from lvseg.data import bundled_sunnybrook, load_dataset, load_sunnybrook


def test_bundled_sample_loads_every_annotated_slice(sunnybrook):
    slices, report = sunnybrook
    assert len(slices) == 56 and report.loaded == 56
    assert report.skipped == [], report
    assert Counter(s.patient_id for s in slices) == {
        "SCD0000101": 18, "SCD0000201": 18, "SCD0000301": 20,
    }
    n_contours = len(list(bundled_sunnybrook().glob("contourfiles/*/i-contours/*.txt")))
    assert n_contours == 56


def test_bundled_masks_are_plausible(sunnybrook):
    for s in sunnybrook[0]:
        assert s.image.dtype == np.float32 and s.shape == (256, 256)
        assert s.mask.dtype == bool and s.mask.any()
        # LV blood pool: from a small apical slice to a dilated failing ventricle (< 80 mm wide)
        assert 50.0 < s.lv_area_mm2 < 5000.0, (s.source, s.lv_area_mm2)
        rows, cols = np.nonzero(s.mask)
        assert rows.min() > 0 and cols.min() > 0
        assert rows.max() < s.shape[0] - 1 and cols.max() < s.shape[1] - 1
        # the blood pool is brighter than the image on average
        assert s.image[s.mask].mean() > s.image.mean()


def test_spacing_and_pixels_come_from_the_dicom(sunnybrook):
    for s in sunnybrook[0][::9]:
        ds = pydicom.dcmread(s.source)
        assert s.spacing == (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1]))
        np.testing.assert_array_equal(s.image, ds.pixel_array.astype(np.float32))
        assert Path(s.source).name == f"{s.extras['image_number']}.dcm"
        assert f"{s.extras['image_number']:04d}" in s.extras["contour_path"]


def test_masks_agree_with_independent_polygon_fills(sunnybrook):
    for s in sunnybrook[0]:
        points = s.extras["contour"]
        x, y = points[:, 0], points[:, 1]
        area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        assert abs(s.mask.sum() / area - 1) < 0.03
        # skimage takes (row, col) vertices; its boundary rule differs, so allow a thin rim
        reference = polygon2mask(s.shape, points[:, ::-1])
        perimeter = np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1).sum()
        assert (reference != s.mask).sum() < 0.6 * perimeter


def test_load_dataset_defaults_to_the_bundled_sample(sunnybrook):
    slices, report = load_dataset("sunnybrook")
    assert len(slices) == 56 and report.loaded == 56
    assert [s.source for s in slices] == [s.source for s in sunnybrook[0]]


def test_small_copy_loads_six(small_sunnybrook):
    slices, report = load_sunnybrook(small_sunnybrook)
    assert len(slices) == 6 and report.n_skipped == 0
    assert str(report) == f"{small_sunnybrook}: 6 loaded, 0 skipped"


# ---- errors: the folder itself -------------------------------------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_sunnybrook(tmp_path / "nowhere")
    assert "nowhere does not exist" in str(info.value)


def test_empty_directory(tmp_path):
    with pytest.raises(ValueError) as info:
        load_sunnybrook(tmp_path)
    assert f"{tmp_path} is empty" in str(info.value)


def test_missing_link_csv(small_sunnybrook):
    (small_sunnybrook / "link.csv").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_sunnybrook(small_sunnybrook)
    assert "has no link.csv" in str(info.value)


def test_link_csv_without_patients_or_columns(small_sunnybrook):
    (small_sunnybrook / "link.csv").write_text("patient_id,original_id\n")
    with pytest.raises(ValueError) as info:
        load_sunnybrook(small_sunnybrook)
    assert "lists no patient" in str(info.value)
    (small_sunnybrook / "link.csv").write_text("patient,contours\nA,B\n")
    with pytest.raises(ValueError) as info:
        load_sunnybrook(small_sunnybrook)
    assert "must have the columns patient_id,original_id" in str(info.value)


def test_missing_dicoms_folder(tmp_path):
    (tmp_path / "link.csv").write_text("patient_id,original_id\nA,B\n")
    with pytest.raises(FileNotFoundError) as info:
        load_sunnybrook(tmp_path)
    assert "has no dicoms/ folder" in str(info.value)


def test_missing_contourfiles_folder(small_sunnybrook):
    for path in sorted(small_sunnybrook.glob("contourfiles/*/*/*")):
        path.unlink()
    for path in sorted(small_sunnybrook.glob("contourfiles/**"), reverse=True):
        path.rmdir()
    with pytest.raises(FileNotFoundError) as info:
        load_sunnybrook(small_sunnybrook)
    assert "has no contourfiles/ folder" in str(info.value)


def test_folder_without_any_image_or_contour(tmp_path):
    (tmp_path / "link.csv").write_text("patient_id,original_id\nA,B\n")
    (tmp_path / "dicoms").mkdir()
    (tmp_path / "contourfiles").mkdir()
    with pytest.raises(ValueError) as info:
        load_sunnybrook(tmp_path)
    assert "holds no DICOM and no contour file" in str(info.value)


def test_bundled_sample_missing_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(sb, "__file__", str(tmp_path / "lvseg" / "data" / "sunnybrook.py"))
    with pytest.raises(FileNotFoundError) as info:
        bundled_sunnybrook()
    assert "the bundled Sunnybrook sample is missing" in str(info.value)
    assert "pass data_dir=" in str(info.value)


# ---- skipped items: counted, with reasons and messages --------------------------------------


def _first(root: Path, patient: str = "SCD0000101") -> tuple[Path, Path]:
    dicom = sorted((root / "dicoms" / patient).glob("*.dcm"), key=lambda p: int(p.stem))[0]
    original = {"SCD0000101": "SC-HF-I-1", "SCD0000201": "SC-HF-I-2"}[patient]
    contour = root / "contourfiles" / original / "i-contours" / (
        f"IM-0001-{int(dicom.stem):04d}-icontour-manual.txt"
    )
    return dicom, contour


def _load_one_skip(root: Path, reason: str) -> str:
    slices, report = load_sunnybrook(root)
    assert len(slices) == 5 and report.loaded == 5
    assert report.counts() == {reason: 1}, report.skipped
    return report.skipped[0].message


def test_unreadable_dicom(small_sunnybrook):
    dicom, _ = _first(small_sunnybrook)
    dicom.write_bytes(b"not a dicom file at all")
    assert "unreadable DICOM" in _load_one_skip(small_sunnybrook, sb.REASON_UNREADABLE_DICOM)


def test_dicom_without_pixel_data(small_sunnybrook):
    dicom, _ = _first(small_sunnybrook)
    ds = pydicom.dcmread(dicom)
    del ds.PixelData
    ds.save_as(dicom)
    message = _load_one_skip(small_sunnybrook, sb.REASON_NO_PIXEL_DATA)
    assert message == f"{dicom}: DICOM has no pixel data"


def test_dicom_without_pixel_spacing(small_sunnybrook):
    dicom, _ = _first(small_sunnybrook)
    ds = pydicom.dcmread(dicom)
    del ds.PixelSpacing
    ds.save_as(dicom)
    message = _load_one_skip(small_sunnybrook, sb.REASON_NO_PIXEL_SPACING)
    assert "DICOM has no valid PixelSpacing" in message


def test_contour_without_image(small_sunnybrook):
    dicom, contour = _first(small_sunnybrook)
    dicom.unlink()
    message = _load_one_skip(small_sunnybrook, sb.REASON_CONTOUR_WITHOUT_IMAGE)
    assert message == f"{contour}: no image dicoms/SCD0000101/{dicom.name}"


def test_image_without_contour_is_counted_not_an_error(small_sunnybrook):
    dicom, contour = _first(small_sunnybrook, "SCD0000201")
    contour.unlink()
    message = _load_one_skip(small_sunnybrook, sb.REASON_IMAGE_WITHOUT_CONTOUR)
    assert message == f"{dicom}: no i-contour file for image {int(dicom.stem)} (not annotated)"


@pytest.mark.parametrize(("text", "got"), [("", "got 0"), ("120.5 130.0\n121 131\n", "got 2")])
def test_contour_with_fewer_than_three_points(small_sunnybrook, text, got):
    _, contour = _first(small_sunnybrook)
    contour.write_text(text)
    message = _load_one_skip(small_sunnybrook, sb.REASON_TOO_FEW_POINTS)
    assert message == f"{contour}: a contour needs at least 3 points; {got}"


def test_malformed_contour_line(small_sunnybrook):
    _, contour = _first(small_sunnybrook)
    contour.write_text("120.5 130.0\n121.0 oops\n125 135\n")
    message = _load_one_skip(small_sunnybrook, sb.REASON_UNREADABLE_CONTOUR)
    assert message == f"{contour}: line 2 is not 'x y': '121.0 oops'"


def test_slice_without_lv(small_sunnybrook):
    _, contour = _first(small_sunnybrook)
    contour.write_text("10.2 10.2\n10.8 10.2\n10.5 10.8\n")  # encloses no pixel centre
    message = _load_one_skip(small_sunnybrook, sb.REASON_NO_LV)
    assert "encloses no pixel centre of the 256x256 image (slice without LV)" in message


def test_patient_missing_from_link_csv_and_odd_names(small_sunnybrook):
    (small_sunnybrook / "dicoms" / "SCD9999999").mkdir()
    (small_sunnybrook / "dicoms" / "SCD9999999" / "12.dcm").write_bytes(b"")
    (small_sunnybrook / "dicoms" / "SCD0000101" / "notes.txt").write_text("hello")
    slices, report = load_sunnybrook(small_sunnybrook)
    assert len(slices) == 6
    assert report.counts() == {sb.REASON_NOT_IN_LINK_CSV: 1, sb.REASON_UNRECOGNISED_FILE: 1}
    assert "patient SCD9999999 is not listed in link.csv" in report.messages(
        sb.REASON_NOT_IN_LINK_CSV
    )[0]
    assert "name does not match <n>.dcm" in report.messages(sb.REASON_UNRECOGNISED_FILE)[0]


def test_every_file_is_either_loaded_or_reported(small_sunnybrook):
    dicom_a, contour_a = _first(small_sunnybrook)
    _, contour_b = _first(small_sunnybrook, "SCD0000201")
    dicom_a.write_bytes(b"garbage")
    contour_b.unlink()
    (small_sunnybrook / "dicoms" / "SCD0000201" / "999.dcm").write_bytes(b"")
    slices, report = load_sunnybrook(small_sunnybrook)
    assert report.loaded == 4 and report.counts() == {
        sb.REASON_IMAGE_WITHOUT_CONTOUR: 2, sb.REASON_UNREADABLE_DICOM: 1,
    }
    accounted = {s.source for s in slices} | {s.extras["contour_path"] for s in slices}
    accounted |= {item.item for item in report.skipped}
    every_file = {str(p) for p in small_sunnybrook.rglob("*") if p.is_file()}
    # only link.csv and the contour of the reported unreadable DICOM are not named themselves
    assert every_file - accounted == {str(small_sunnybrook / "link.csv"), str(contour_a)}
