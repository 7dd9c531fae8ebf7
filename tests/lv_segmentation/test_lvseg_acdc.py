"""ACDC loader on tiny NIfTI volumes written with nibabel."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import lvseg.data.acdc as acdc
from lvseg.data import load_acdc, load_dataset

ZOOMS = (1.5, 1.25, 10.0)


def _write(path: Path, data: np.ndarray, zooms=ZOOMS) -> None:
    img = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    img.header.set_zooms((zooms + (1.0,))[: data.ndim])
    nib.save(img, str(path))


def _frame(rng: np.random.Generator, shape=(12, 10, 3), lv_slices=(0, 2)):
    image = rng.uniform(0, 500, shape).astype(np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 1:9, :] = 1  # RV
    labels[5:10, 2:8, :] = 2  # myocardium
    for z in lv_slices:
        labels[6:9, 3 + z : 7, z] = 3  # LV, a different size per slice
    return image, labels


@pytest.fixture()
def acdc_dir(tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    volumes = {}
    p1 = tmp_path / "patient001"
    p1.mkdir()
    for frame, lv in ((1, (0, 2)), (12, (1,))):
        image, labels = _frame(rng, lv_slices=lv)
        _write(p1 / f"patient001_frame{frame:02d}.nii.gz", image)
        _write(p1 / f"patient001_frame{frame:02d}_gt.nii.gz", labels)
        volumes[frame] = (image, labels)
    (p1 / "Info.cfg").write_text("ED: 1\nES: 12\n")
    _write(p1 / "patient001_4d.nii.gz", np.zeros((12, 10, 3, 2), np.float32))
    return tmp_path, volumes


def test_every_slice_with_lv_becomes_a_slice(acdc_dir):
    root, volumes = acdc_dir
    slices, report = load_acdc(root)
    assert [(s.extras["frame"], s.extras["z"]) for s in slices] == [(1, 0), (1, 2), (12, 1)]
    assert report.loaded == 3 and report.counts() == {acdc.REASON_NO_LV: 3}
    for s in slices:
        image, labels = volumes[s.extras["frame"]]
        z = s.extras["z"]
        np.testing.assert_allclose(s.image, image[:, :, z], rtol=1e-6)
        np.testing.assert_array_equal(s.mask, labels[:, :, z] == 3)
        np.testing.assert_array_equal(s.extras["labels"], labels[:, :, z])
        assert s.spacing == (1.5, 1.25) and s.patient_id == "patient001"
        assert s.source.endswith(f"patient001_frame{s.extras['frame']:02d}.nii.gz#z={z}")
        assert s.extras["n_z"] == 3 and s.image.flags.c_contiguous
    assert "patient001_frame01.nii.gz#z=1: no pixel with LV label 3" in report.messages()[0]


def test_lv_label_is_configurable(acdc_dir):
    slices, report = load_acdc(acdc_dir[0], lv_label=2)
    assert len(slices) == 6 and report.n_skipped == 0


def test_bad_frames_are_counted_with_reasons(acdc_dir):
    root, _ = acdc_dir
    rng = np.random.default_rng(1)
    p2 = root / "patient002"
    p2.mkdir()
    image, labels = _frame(rng)
    _write(p2 / "patient002_frame01.nii", image)  # uncompressed, no ground truth
    _write(p2 / "patient002_frame05_gt.nii.gz", labels)  # ground truth without image
    _write(p2 / "patient002_frame07.nii.gz", image)
    _write(p2 / "patient002_frame07_gt.nii.gz", labels[:, :, :2])  # shape mismatch
    (p2 / "patient002_frame09.nii.gz").write_bytes(b"broken")
    _write(p2 / "patient002_frame09_gt.nii.gz", labels)
    (root / "patient003").mkdir()
    slices, report = load_acdc(root)
    assert len(slices) == 3
    assert report.counts() == {
        acdc.REASON_NO_LV: 3,
        acdc.REASON_FRAME_WITHOUT_GT: 1,
        acdc.REASON_GT_WITHOUT_FRAME: 1,
        acdc.REASON_SHAPE_MISMATCH: 1,
        acdc.REASON_UNREADABLE_NIFTI: 1,
        acdc.REASON_EMPTY_PATIENT: 1,
    }
    (message,) = report.messages(acdc.REASON_FRAME_WITHOUT_GT)
    assert message.endswith("patient002_frame01.nii: no ground truth patient002_frame01_gt.nii.gz "
                            "(not annotated)")
    (message,) = report.messages(acdc.REASON_GT_WITHOUT_FRAME)
    assert "no image patient002_frame05.nii.gz" in message
    (message,) = report.messages(acdc.REASON_SHAPE_MISMATCH)
    assert "image shape (12, 10, 3) differs from ground truth shape (12, 10, 2)" in message
    (message,) = report.messages(acdc.REASON_UNREADABLE_NIFTI)
    assert "patient002_frame09.nii.gz: unreadable NIfTI pair" in message
    (message,) = report.messages(acdc.REASON_EMPTY_PATIENT)
    assert message.endswith("patient003: no patientNNN_frameMM.nii(.gz) file")


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_acdc(tmp_path / "nowhere")
    assert "ACDC data directory" in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(ValueError) as info:
        load_acdc(tmp_path)
    assert f"{tmp_path} holds no patientNNN folder" in str(info.value)


def _patient(folder: Path, name: str) -> None:
    image, labels = _frame(np.random.default_rng(int(name[-3:])))
    (folder / name).mkdir(parents=True)
    _write(folder / name / f"{name}_frame01.nii.gz", image)
    _write(folder / name / f"{name}_frame01_gt.nii.gz", labels)


def test_a_folder_above_the_patients_names_the_subfolder_that_holds_them(tmp_path):
    top = tmp_path / "acdc"  # ACDC's download: training/ and testing/ above the patients
    for folder, name in (("training", "patient001"), ("training", "patient002"),
                         ("testing", "patient101"), ("many", "patient201"),
                         ("many", "patient202"), ("many", "patient203")):
        _patient(top / folder, name)
    (top / "empty").mkdir()
    (top / "README.md").write_text("ACDC")
    expected = (f"{top} holds no patientNNN folder; expected patientNNN/patientNNN_frameMM.nii.gz"
                " with patientNNN_frameMM_gt.nii.gz; its subfolders training/ (2 patient folders)"
                f", testing/ (1) and many/ (3) hold patient folders: did you mean --data-dir "
                f"{top / 'training'}?")
    for load in (load_acdc, lambda d: load_dataset("acdc", d)):  # train's and evaluate's path
        with pytest.raises(ValueError) as info:
            load(top)
        assert str(info.value) == expected
    slices, _ = load_acdc(top / "training")  # the folder the hint names is one ACDC reads
    assert sorted({s.patient_id for s in slices}) == ["patient001", "patient002"]

    shutil.rmtree(top / "training")
    shutil.rmtree(top / "testing")
    with pytest.raises(ValueError) as info:
        load_acdc(top)
    assert str(info.value).endswith("; its subfolder many/ holds 3 patient folders: did you mean "
                                    f"--data-dir {top / 'many'}?")
    shutil.rmtree(top / "many")
    with pytest.raises(ValueError) as info:
        load_acdc(top)  # no subfolder holds patients: no hint
    assert str(info.value).endswith("holds no patientNNN folder; expected patientNNN/"
                                    "patientNNN_frameMM.nii.gz with patientNNN_frameMM_gt.nii.gz")


def test_load_dataset_requires_a_directory_for_acdc(acdc_dir):
    with pytest.raises(ValueError) as info:
        load_dataset("acdc")
    assert "data_dir is required for 'acdc'" in str(info.value)
    slices, _ = load_dataset("acdc", acdc_dir[0])
    assert len(slices) == 3
