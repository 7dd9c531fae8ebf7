"""Centre-free segmentation of whole volumes: the finder, ``lvseg predict`` without --center and
``lvseg evaluate --protocol volumes`` on ACDC-layout phantoms (lvseg.volumes.phantoms).

The oracle "U-Net" marks the brightest pixels of each slice (the phantom's blood pool is its
brightest tissue), so the answer is known: the LV mask of the phantom.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

from lvseg.centre_free import RunSegmenter
from lvseg.cli import main
from lvseg.inference_options import StarOverrides
from lvseg.locate import locate
from lvseg.runs import LoadedRun, load_run
from lvseg.volumes import Volume, dice_3d, phantom_cine, segment_volume, write_phantom_patient
from lvseg_testing import one_error_line, tiny_config

SUMMARY_KEYS = {"dice_ed", "dice_es", "hd_ed_mm", "hd_es_mm", "ef_r", "ef_bias", "ef_loa",
                "edv_r", "esv_r", "centre"}


class Bright(torch.nn.Module):
    """Logit > 0 on the brightest 15 % of each slice's intensity range."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x.amax(dim=(-2, -1), keepdim=True), x.amin(dim=(-2, -1), keepdim=True)
        return x - (hi - 0.15 * (hi - lo))


def _oracle(method: str = "unet") -> LoadedRun:
    return LoadedRun(tiny_config(method), Bright(), "oracle", 0)


def test_locate_finds_the_phantom_lv_centre_and_the_slices_without_it() -> None:
    images, labels, truth = phantom_cine(size=64, n_frames=1)
    found = locate("unet", Bright(), images[0], truth.spacing[1:], min_area_mm2=300.0)
    lv = labels[0] == 3
    assert found.has_lv.tolist() == [False] + [True] * 6 + [False] * 3  # z=7: apex < 300 mm²
    for z in np.flatnonzero(found.has_lv):
        rows, cols = np.nonzero(lv[z])
        assert np.hypot(found.centers[z, 0] - cols.mean(), found.centers[z, 1] - rows.mean()) < 0.5


@pytest.mark.parametrize("method", ["unet", "unet-dp"])
def test_the_oracle_segments_the_phantom_without_a_centre(method: str) -> None:
    images, labels, truth = phantom_cine(size=64, n_frames=1)
    result = segment_volume(Volume(images, truth.spacing, "phantom"),
                            RunSegmenter(_oracle(method), min_area_mm2=300.0))
    assert result.no_lv == [(0, 0), (0, 7), (0, 8), (0, 9)]
    assert dice_3d(result.masks[0], labels[0] == 3) > 0.9


def test_an_end_to_end_run_needs_a_pixel_trained_locator() -> None:
    with pytest.raises(ValueError, match="edpcnn run's output map is trained through the DP.*"
                       "--locator RUN_DIR"):
        RunSegmenter(_oracle("edpcnn"))
    RunSegmenter(_oracle("edpcnn"), locator=_oracle("unet"))  # accepted
    with pytest.raises(ValueError, match="only switch between unet and unet-dp"):
        RunSegmenter(_oracle("unet"), method="edpcnn")


def _nifti(folder: Path, name: str, array: np.ndarray) -> Path:
    affine = np.diag([1.5625, 1.5625, 10.0, 1.0])
    affine[:3, 3] = (-40.0, 12.5, 3.0)
    path = folder / name
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def test_predict_a_3d_and_a_4d_volume_without_centre(tiny_runs: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    images, _, _ = phantom_cine(size=48, n_frames=3)
    three = _nifti(tmp_path, "three.nii.gz", images[0].transpose(1, 2, 0))
    patient = write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=4)
    out = tmp_path / "out"
    assert main(["predict", str(tiny_runs["unet-dp"]), str(three), str(patient), "--out", str(out),
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "three.nii.gz: LV volume per frame (mL)" in printed and "EF" in printed
    mask = nib.load(str(out / "three_lv.nii.gz"))
    assert np.array_equal(mask.affine, nib.load(str(three)).affine) and mask.shape == (48, 48, 10)
    cine = nib.load(str(out / "patient901_lv.nii.gz"))
    source = nib.load(str(patient / "patient901_4d.nii.gz"))
    assert np.array_equal(cine.affine, source.affine) and cine.shape == source.shape
    record = json.loads((out / "patient901_volumes.json").read_text())
    assert len(record["frames"]) == 4 and {"edv_ml", "esv_ml", "ef"} <= set(record)
    with open(out / "patient901_volumes.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert list(out.glob("patient901_montage_f*.png")) and list(out.glob("three_montage_f*.png"))


def test_slices_without_lv_are_counted(tiny_runs: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    images, _, _ = phantom_cine(size=48, n_frames=1)
    three = _nifti(tmp_path, "three.nii.gz", images[0].transpose(1, 2, 0))
    assert main(["predict", str(tiny_runs["unet"]), str(three), "--out", str(tmp_path / "o"),
                 "--min-lv-area", "1e9", "--device", "cpu"]) == 0
    assert "10 slices without LV" in capsys.readouterr().out
    record = json.loads((tmp_path / "o" / "three_volumes.json").read_text())
    assert len(record["slices_without_lv"]) == 10 and record["frames"][0]["volume_ml"] == 0


def test_evaluate_volumes_writes_every_summary_key(tiny_runs: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for k, n in enumerate((901, 902)):
        write_phantom_patient(tmp_path / "acdc", f"patient{n}", size=48, n_frames=4, seed=k)
    out = tmp_path / "res" / "volumes.json"
    assert main(["evaluate", str(tiny_runs["unet"]), "--protocol", "volumes", "--data", "acdc",
                 "--data-dir", str(tmp_path / "acdc"), "--split", "all", "--json", str(out),
                 "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert SUMMARY_KEYS <= set(report["summary"]) and report["summary"]["centre"] == "predicted"
    assert [p["patient"] for p in report["patients"]] == ["patient901", "patient902"]
    assert report["method"] == "unet" and report["split"] == "all"
    assert (tmp_path / "res" / "volumes_bland_altman.png").is_file()
    assert "centre predicted: Dice ED" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["predict", "{run}", "{patient}", "--center", "3,4", "--out", "{tmp}/o"],
     "--center places the star in one 2-D slice, but {patient} is a folder"),
    (["predict", "{run}", "{patient}", "--slice", "2", "--out", "{tmp}/o"],
     "--slice applies to one 2-D slice with --center"),
    (["predict", "{edpcnn}", "{patient}", "--out", "{tmp}/o"],
     "edpcnn run's output map is trained through the DP"),
    (["evaluate", "{run}", "--protocol", "volumes", "--data-dir", "{tmp}/acdc", "--split", "all",
      "--center-jitter", "0.5"], "--center-jitter does not apply to --protocol volumes"),
    (["evaluate", "{run}", "--protocol", "volumes", "--data-dir", "{tmp}", "--split", "all"],
     "reads ACDC patient folders (patientNNN with Info.cfg); {tmp} holds none"),
    (["evaluate", "{run}", "--protocol", "volumes", "--data-dir", "{tmp}", "--split", "all"],
     "{tmp} holds none; its subfolder acdc/ holds 1 patient folder: did you mean --data-dir "
     "{tmp}/acdc?"),
    (["evaluate", "{run}", "--data", "acdc", "--data-dir", "{tmp}", "--split", "all"],
     "{tmp} holds no patientNNN folder; expected patientNNN/patientNNN_frameMM.nii.gz with "
     "patientNNN_frameMM_gt.nii.gz; its subfolder acdc/ holds 1 patient folder: did you mean "
     "--data-dir {tmp}/acdc?"),
    (["predict", "{run}", "{tmp}/acdc", "--out", "{tmp}/o"],
     "{tmp}/acdc holds no DICOM image (a volume folder holds one short-axis series, one file "
     "per slice and frame); it holds 1 patient folder: give one or more of them, e.g. {patient}"),
    (["predict", "{run}", "{tmp}", "--out", "{tmp}/o"],
     "; its subfolder acdc/ holds 1 patient folder: give one or more of them, e.g. {patient}"),
])
def test_error_messages(tiny_runs: dict[str, Path], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    patient = write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=2)
    names = {"run": tiny_runs["unet"], "edpcnn": tiny_runs["edpcnn"], "patient": patient,
             "tmp": tmp_path}
    assert main([a.format(**names) for a in argv]) == 2
    assert message.format(**names) in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_load_run_of_a_tiny_run_segments_with_its_own_locator(tiny_runs: dict[str, Path]) -> None:
    images, _, truth = phantom_cine(size=48, n_frames=1)
    results = RunSegmenter(load_run(tiny_runs["unet-dp"]), min_area_mm2=0.0)(images, truth.spacing)
    assert len(results) == 10
    for r in results:  # a found LV has its centre, and the star's radii or a fallback note
        if r.has_lv:
            assert r.center is not None and (r.radii is not None) != (r.note is not None)
        else:
            assert not r.mask.any()


def test_a_slice_whose_largest_blob_is_far_from_the_stack_takes_the_blob_near_the_lv():
    """:func:`lvseg.locate.locate` reads the slices as one stack (MAX_JUMP_MM)."""
    import torch

    from lvseg.locate import MAX_JUMP_MM, locate

    class Bright(torch.nn.Module):  # "foreground" where the image is bright
        depth = 0

        def forward(self, x):
            return x - 1.0

    stack = np.zeros((4, 120, 120), np.float32)
    stack[:, 50:62, 50:62] = 2.0  # the LV of every slice, 12 x 12 px around (55.5, 55.5)
    stack[2, 5:25, 90:115] = 2.0  # a larger bright structure far away on slice 2
    found = locate("unet", Bright(), stack, (1.37, 1.37), min_area_mm2=10.0)
    assert MAX_JUMP_MM < 60
    np.testing.assert_allclose(found.centers, np.full((4, 2), 55.5), atol=1e-6)
    assert found.has_lv.all()


class Everywhere(torch.nn.Module):
    """An end-to-end map positive everywhere: the DP finds no edge, the contour is the star's
    full disc (what an EDPCNN map did on some basal ACDC slices)."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


def test_an_implausible_dp_contour_falls_back_to_the_locator_mask_with_a_warning() -> None:
    images, labels, truth = phantom_cine(size=64, n_frames=1)
    run = LoadedRun(tiny_config("edpcnn"), Everywhere(), "flat", 0)
    volume = Volume(images, truth.spacing, "phantom")
    lv = labels[0] == 3
    kept = segment_volume(volume, RunSegmenter(run, locator=_oracle(), min_area_mm2=300.0,
                                               fallback=False))
    assert dice_3d(kept.masks[0], lv) < 0.6  # the old behaviour: the star's discs
    result = segment_volume(volume, RunSegmenter(run, locator=_oracle(), min_area_mm2=300.0))
    assert dice_3d(result.masks[0], lv) > 0.9
    found = locate("unet", Bright(), images[0], truth.spacing[1:], min_area_mm2=300.0)
    np.testing.assert_array_equal(result.masks[0][found.has_lv], found.masks[found.has_lv])
    assert not result.masks[0][~found.has_lv].any()
    for z in range(1, 7):  # the run's 12 lines, 50 for centre-free segmentation
        assert (f"frame 0, slice {z}: the DP contour lies at the star radius on 50 of 50 lines; "
                "the locator's LV mask is used instead") in result.warnings


def test_a_plausible_dp_contour_is_kept() -> None:
    images, labels, truth = phantom_cine(size=64, n_frames=1)
    segmenter = RunSegmenter(_oracle("unet-dp"), min_area_mm2=300.0)
    results = segmenter(images, truth.spacing)
    assert all(r.radii is not None and r.note is None for r in results if r.has_lv)


def test_locate_maps_the_chosen_blob_back_to_the_input_pixels() -> None:
    stack = np.zeros((2, 90, 100), np.float32)
    stack[:, 30:41, 60:75] = 2.0
    stack[1, 5:8, 5:8] = 2.0  # a smaller blob: not the LV
    found = locate("unet", Bright(), stack, (1.37, 1.37), min_area_mm2=10.0)
    truth = np.zeros((2, 90, 100), bool)
    truth[:, 30:41, 60:75] = True
    np.testing.assert_array_equal(found.masks, truth)
    coarse = locate("unet", Bright(), stack[:, ::2, ::2], (2.74, 2.74), min_area_mm2=10.0)
    half = truth[:, ::2, ::2]  # through the resampling (x 2 and back): right up to its edge
    ring = np.ones((1, 3, 3), bool)
    assert not (coarse.masks & ~ndimage.binary_dilation(half, ring)).any()
    assert not (ndimage.binary_erosion(half, ring) & ~coarse.masks).any()


def test_n_lines_gives_the_volume_contours_n_points(tiny_runs: dict[str, Path], tmp_path: Path
                                                    ) -> None:
    """A phantom volume segmented with ``--n-lines``: every DP contour has N points (the run
    was trained with 12; without ``--n-lines``, centre-free segmentation's 50), and
    ``evaluate --protocol volumes`` records the star it used."""
    images, _, truth = phantom_cine(size=48, n_frames=1)
    for n_lines, expected in ((None, 50), (12, 12), (20, 20)):
        segmenter = RunSegmenter(load_run(tiny_runs["unet-dp"],
                                          overrides=StarOverrides(n_lines=n_lines)),
                                 min_area_mm2=0.0)
        radii = [r.radii for r in segmenter(images, truth.spacing) if r.radii is not None]
        assert radii and all(len(r) == expected for r in radii)
    write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=2)
    out = tmp_path / "volumes.json"
    assert main(["evaluate", str(tiny_runs["unet-dp"]), "--protocol", "volumes", "--data-dir",
                 str(tmp_path / "acdc"), "--split", "all", "--n-lines", "20", "--json", str(out),
                 "--device", "cpu"]) == 0
    report = json.loads(out.read_text())
    assert report["n_lines"] == 20 and report["delta"] == 1
    assert main(["evaluate", str(tiny_runs["unet"]), "--protocol", "volumes", "--data-dir",
                 str(tmp_path / "acdc"), "--split", "all", "--json", str(out),
                 "--device", "cpu"]) == 0
    report = json.loads(out.read_text())  # the U-Net alone draws no star
    assert [report[k] for k in ("delta", "n_lines", "edge_offset", "smoothing")] == [None] * 4
