"""The challenge protocol (3-D Dice/HD against MONAI, EF/volumes by hand), writing, plausibility."""

from __future__ import annotations

import errno
import json
import math
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance
from scipy import ndimage, stats

from lvseg.volumes import (
    SliceResult,
    Volume,
    bland_altman_figure,
    check_area,
    check_center_inside,
    check_rim,
    dice_3d,
    hausdorff_3d,
    largest_component,
    lv_volume_ml,
    phantom_cine,
    read_nifti,
    read_patient,
    score_case,
    segment_volume,
    summarize_cases,
    write_mask_nifti,
    write_phantom_patient,
    write_volume_results,
)

SPACING = (10.0, 1.5, 1.25)  # anisotropic, as short-axis cines are


def _blob(seed: int, shape=(6, 24, 20)) -> np.ndarray:
    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), (0.7, 2, 2))
    return field > 0.02


def _monai(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    p = torch.as_tensor(pred[None, None], dtype=torch.float32)
    t = torch.as_tensor(true[None, None], dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (compute_dice(p, t, include_background=True, ignore_empty=False).item(),
                compute_hausdorff_distance(p, t, include_background=True,
                                           spacing=SPACING).item())


@pytest.mark.parametrize("seed", range(6))
def test_3d_dice_and_hausdorff_equal_monai_on_random_blobs(seed: int) -> None:
    pred, true = _blob(2 * seed), _blob(2 * seed + 1)
    assert pred.any() and true.any()
    dice, hd = _monai(pred, true)
    assert dice_3d(pred, true) == pytest.approx(dice, rel=1e-6)
    assert hausdorff_3d(pred, true, SPACING) == pytest.approx(hd, rel=1e-6)


def test_hausdorff_uses_the_anisotropic_spacing_and_the_empty_conventions() -> None:
    a = np.zeros((4, 9, 9), bool)
    a[1, 2:7, 2:7] = True
    b = np.zeros_like(a)
    b[3, 2:7, 2:7] = True  # two slices further: 2 * dz
    assert hausdorff_3d(a, b, SPACING) == pytest.approx(20.0)
    empty = np.zeros_like(a)
    assert (dice_3d(empty, empty), hausdorff_3d(empty, empty, SPACING)) == (1.0, 0.0)
    assert dice_3d(a, empty) == 0.0 and math.isnan(hausdorff_3d(a, empty, SPACING))


@pytest.mark.parametrize("spacing", [(10.0, 0.0, 1.25), (1.5, 1.25), None, "abc", 1.5])
def test_hausdorff_refuses_a_spacing_that_is_not_three_sizes_naming_it(spacing) -> None:
    a = np.ones((2, 3, 3), bool)
    with pytest.raises(ValueError, match=r"spacing must be \(dz, dy, dx\), three positive mm; got "
                       + re.escape(repr(spacing))):
        hausdorff_3d(a, a, spacing)


def test_score_case_by_hand() -> None:
    true = np.zeros((2, 3, 10, 10), bool)
    true[0, :, 0:5, 0:4] = True   # ED: 60 voxels
    true[1, :2, 0:5, 0:3] = True  # ES: 30 voxels
    pred = true.copy()
    pred[1, 2, 0:5, 0:2] = True   # ES: 40 voxels, 30 shared
    voxel = 10 * 1.5 * 1.25 / 1000  # mL
    scored = score_case(pred, true, SPACING, "p7", frames=(1, 12))
    assert scored["true_edv_ml"] == pytest.approx(60 * voxel)
    assert scored["esv_ml"] == pytest.approx(40 * voxel)
    assert scored["ef"] == pytest.approx(100 * (60 - 40) / 60)
    assert scored["true_ef"] == pytest.approx(50.0)
    ed, es = scored["frames"]
    assert (ed["phase"], ed["frame"], ed["dice"], ed["hd_mm"]) == ("ED", 1, 1.0, 0.0)
    assert es["frame"] == 12 and es["dice"] == pytest.approx(2 * 30 / (40 + 30))
    assert es["hd_mm"] == pytest.approx(10.0)  # the extra slice lies one dz from the truth


def _case(ef: float, true_ef: float, edv: float, true_edv: float, hd_ed: float = 5.0) -> dict:
    return {"ef": ef, "true_ef": true_ef, "edv_ml": edv, "true_edv_ml": true_edv,
            "esv_ml": edv * (1 - ef / 100), "true_esv_ml": true_edv * (1 - true_ef / 100),
            "frames": [{"dice": 0.9, "hd_mm": hd_ed}, {"dice": 0.8, "hd_mm": 7.0}]}


def test_summary_keys_by_hand() -> None:
    cases = [_case(56, 55, 150, 140), _case(39, 40, 120, 130, hd_ed=math.nan),
             _case(63, 60, 100, 110)]
    summary = summarize_cases(cases)
    assert {"dice_ed", "dice_es", "hd_ed_mm", "hd_es_mm", "ef_r", "ef_bias", "ef_loa", "edv_r",
            "esv_r", "centre"} <= set(summary)
    assert summary["centre"] == "predicted" and summary["n_patients"] == 3
    assert summary["dice_ed"] == pytest.approx(0.9) and summary["dice_es"] == pytest.approx(0.8)
    assert summary["hd_ed_mm"] == 5.0 and summary["n_undefined"] == {"hd_ed_mm": 1}
    assert summary["ef_bias"] == pytest.approx(1.0)  # differences 1, -1, 3
    assert summary["ef_loa"] == pytest.approx(1.96 * 2.0)  # their sample s.d. is 2
    assert summary["ef_r"] == pytest.approx(stats.pearsonr([56, 39, 63], [55, 40, 60])[0])
    assert summary["edv_r"] == pytest.approx(stats.pearsonr([150, 120, 100], [140, 130, 110])[0])
    with pytest.raises(ValueError, match="cases must hold at least one scored patient"):
        summarize_cases([])


def _oracle(labels: np.ndarray, bad: tuple[int, int] | None = None):
    """A segmenter returning the phantom's truth; slice ``bad`` gets a 2-pixel LV off-centre."""
    def segment(images: np.ndarray, spacing) -> list[SliceResult]:
        results = []
        for t in range(images.shape[0]):
            for z in range(images.shape[1]):
                mask = labels[t, z] == 3
                if (t, z) == bad:
                    mask = np.zeros_like(mask)
                    mask[0, :2] = True
                results.append(SliceResult(mask, bool(mask.any()), center=(31.5, 31.5)))
        return results
    return segment


def test_segment_volume_counts_slices_without_lv_and_names_implausible_ones(tmp_path) -> None:
    folder = write_phantom_patient(tmp_path, "patient003", size=64, n_frames=6)
    _, labels, truth = phantom_cine(size=64, n_frames=6)
    case = read_patient(folder)
    result = segment_volume(case.volume, _oracle(labels, bad=(1, 4)))
    assert (0, 0) in result.no_lv and (0, 9) in result.no_lv and (0, 4) not in result.no_lv
    assert result.warnings == [  # 2 px of 1.5625 mm
        "frame 2, slice 4: LV area 4.88 mm² is implausibly small (< 20 mm²)",
        "frame 2, slice 4: the star centre (x 31.5, y 31.5) is outside the predicted LV"]
    edv, esv, ef = result.phases(case.ed, case.es)
    assert ef == pytest.approx(truth.ef, abs=1.5)  # the phantom's known EF (test_volumes_cases)
    assert edv == pytest.approx(lv_volume_ml(labels[0] == 3, truth.spacing))


def test_results_are_written_in_the_inputs_geometry(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient004", size=48, n_frames=5)
    _, labels, _ = phantom_cine(size=48, n_frames=5)
    case = read_patient(folder)
    result = segment_volume(case.volume, _oracle(labels))
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.csv"
    victim.write_text("keep me")
    (out / "p4_volumes.csv").symlink_to(victim)  # a planted link is replaced, never followed
    (out / "p4_lv.nii.gz").symlink_to(victim)
    paths = write_volume_results(out, "p4", case.volume, result, case, label=3)
    assert [p.name for p in paths] == ["p4_lv.nii.gz", "p4_montage_f01.png", "p4_montage_f03.png",
                                       "p4_volumes.json", "p4_volumes.csv"]
    assert victim.read_text() == "keep me" and not (out / "p4_volumes.csv").is_symlink()
    assert not (out / "p4_lv.nii.gz").is_symlink()
    written = nib.load(str(out / "p4_lv.nii.gz"))
    source = nib.load(str(folder / "patient004_4d.nii.gz"))
    np.testing.assert_array_equal(written.affine, source.affine)
    assert written.header.get_zooms() == source.header.get_zooms()
    assert written.get_data_dtype() == np.uint8 and written.shape == source.shape
    np.testing.assert_array_equal(np.asarray(written.dataobj),
                                  (labels == 3).transpose(2, 3, 1, 0) * 3)
    assert read_nifti(out / "p4_lv.nii.gz").array.max() == 3
    record = json.loads((out / "p4_volumes.json").read_text())
    assert record["ef"] == pytest.approx(result.phases(case.ed, case.es).ef_percent)
    assert [f["phase"] for f in record["frames"]] == ["ED", None, "ES", None, None]
    csv_rows = (out / "p4_volumes.csv").read_text().splitlines()
    assert csv_rows[0] == "frame,index,phase,volume_ml" and csv_rows[3].startswith("3,2,ES,")
    for png in paths[1:3]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "linked").symlink_to(out)
    with pytest.raises(ValueError, match="linked is a symbolic link; lvseg never writes through"):
        write_volume_results(tmp_path / "linked", "p4", case.volume, result, case)


def test_a_full_disk_leaves_the_previous_mask_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lvseg.rundir

    volume = Volume(np.zeros((1, 3, 8, 9)), (8.0, 1.25, 1.5), "v")
    path = tmp_path / "v_lv.nii.gz"
    write_mask_nifti(path, volume, np.zeros(volume.array.shape, bool))
    before = path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lvseg.rundir.os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        write_mask_nifti(path, volume, np.ones(volume.array.shape, bool))
    assert str(info.value) == (f"cannot write {path}: the disk is full; no partial file was left "
                               "there")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(ValueError, match=r"path must end in .nii or .nii.gz; got '.*v_lv.img'"):
        write_mask_nifti(tmp_path / "v_lv.img", volume, np.zeros(volume.array.shape, bool))


def test_a_volume_without_header_gets_its_spacing_as_zooms(tmp_path: Path) -> None:
    volume = Volume(np.zeros((1, 3, 8, 9)), (8.0, 1.25, 1.5), "dicom-folder",
                    affine=np.diag([-1.25, -1.5, 8.0, 1.0]))
    result = segment_volume(volume, lambda images, spacing: [
        SliceResult(np.pad(np.ones((4, 4), bool), ((2, 2), (2, 3))), True)] * 3)
    write_volume_results(tmp_path, "d", volume, result)
    back = read_nifti(tmp_path / "d_lv.nii.gz")
    assert back.spacing == pytest.approx(volume.spacing) and back.array.shape == (1, 3, 8, 9)
    record = json.loads((tmp_path / "d_volumes.json").read_text())
    assert "ef" not in record and record["frames"][0]["volume_ml"] == pytest.approx(
        3 * 16 * 8.0 * 1.25 * 1.5 / 1000)


def test_bland_altman_png(tmp_path: Path) -> None:
    bland_altman_figure(tmp_path / "ba.png", [50, 60, math.nan], [48, 61, 40])
    assert (tmp_path / "ba.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="predicted and true must be paired"):
        bland_altman_figure(tmp_path / "ba.png", [1, 2], [1])


# --------------------------------------------------------------------- plausibility
def test_rim_check() -> None:
    name = "frame 2, slice 5"
    assert check_rim([65.0] * 13 + [20.0] * 12, 65.0, name) == (
        "frame 2, slice 5: the contour lies at the star radius on 13 of 25 lines (the LV edge "
        "was not found; a wrong centre or no LV?)")
    assert check_rim([65.0] * 12 + [20.0] * 13, 65.0, name) is None  # not most lines
    with pytest.raises(ValueError, match="frame 2, slice 5: radii must be non-empty"):
        check_rim([], 65.0, name)


def test_area_check_bounds_in_mm2() -> None:
    mask = np.zeros((100, 100), bool)
    mask[:4, :4] = True  # 16 px
    assert check_area(mask, (1.0, 1.0), "s") == (
        "s: LV area 16 mm² is implausibly small (< 20 mm²)")
    assert check_area(mask, (1.25, 1.25), "s") is None  # 25 mm²
    mask[:] = True  # 10^4 px
    assert check_area(mask, (1.0, 1.0), "s") == (
        "s: LV area 1e+04 mm² is implausibly large (> 6000 mm²)")
    assert check_area(np.zeros((4, 4)), (1.0, 1.0), "s") is None  # no LV is not a warning


def test_centre_check_uses_x_as_the_column() -> None:
    mask = np.zeros((10, 20), bool)
    mask[2:4, 12:16] = True
    assert check_center_inside(mask, (13.0, 3.0), "s") is None
    assert check_center_inside(mask, (3.0, 13.0), "s") == (
        "s: the star centre (x 3, y 13) is outside the predicted LV")
    assert check_center_inside(mask, (math.nan, 3.0), "s") is not None


def test_largest_component_keeps_the_biggest_8_connected_blob() -> None:
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # 3, diagonally connected
    mask[5:7, 5:7] = True  # 4
    np.testing.assert_array_equal(largest_component(mask), np.pad(np.ones((2, 2), bool),
                                                                  ((5, 1), (5, 1))))


# ---------------------------------------------------------------- the CLI's entry points
def test_evaluate_volumes_scores_perfect_and_shrunk_predictions(tmp_path: Path) -> None:
    from lvseg.volumes import evaluate_volumes

    folders = [write_phantom_patient(tmp_path / "data", f"patient{i:03d}", cine=False, size=48,
                                     n_frames=5, shrink=(k, 0.9), noise=0.0) for i, k in
               enumerate((0.7, 0.75, 0.8), 1)]

    def truth_of(images: np.ndarray, spacing) -> list[SliceResult]:  # intensity 1 = blood pool
        return [SliceResult(m, bool(m.any())) for m in (np.abs(images - 1000) < 150)
                .reshape(-1, *images.shape[-2:])]

    report = evaluate_volumes(folders, truth_of, centre="none", json_path=tmp_path / "v.json",
                              figure=tmp_path / "ba.png")
    summary = report["summary"]
    assert summary["dice_ed"] == summary["dice_es"] == 1.0 and summary["hd_es_mm"] == 0.0
    assert summary["ef_bias"] == pytest.approx(0.0) and summary["ef_r"] == pytest.approx(1.0)
    assert summary["centre"] == "none" and [p["patient"] for p in report["patients"]] == [
        "patient001", "patient002", "patient003"]
    assert json.loads((tmp_path / "v.json").read_text()) == report
    assert (tmp_path / "ba.png").is_file()


def test_predict_volumes_writes_every_input_and_refuses_name_clashes(tmp_path: Path) -> None:
    from lvseg.volumes import predict_volumes

    folder = write_phantom_patient(tmp_path / "data", "patient005", size=40, n_frames=3)
    _, labels, _ = phantom_cine(size=40, n_frames=3)
    records = predict_volumes([folder, folder / "patient005_frame01.nii.gz"], _oracle(labels),
                              tmp_path / "out")
    assert records[0]["patient"] == "patient005" and records[0]["ef"] is not None
    assert "ef" not in records[1] and len(records[1]["frames"]) == 1
    assert (tmp_path / "out" / "patient005_frame01_lv.nii.gz").is_file()
    with pytest.raises(ValueError, match="would both write patient005_lv.nii.gz"):
        predict_volumes([folder, folder], _oracle(labels), tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
