"""Cases: ACDC-layout phantom folders (3-D and 4-D) read back with a known EF, Info.cfg, real ACDC.

Tolerance of the phantom EF: the phantom's analytic EF is that of continuous half ellipsoids;
the masks sample them at voxel centres (slices 10 mm apart), which moves the volumes by about
1 % and the EF by well under 1.5 EF points for the sizes used here. The voxel-count EF is exact.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lvseg.volumes import (
    case_from_frames,
    case_from_volume,
    ejection_fraction,
    lv_volume_ml,
    phantom_cine,
    read_info,
    read_patient,
    write_phantom_patient,
)

_ROOT = Path(__file__).resolve().parents[2]
#: ../shared/data/acdc/training of the checkout, of a worktree in wt/<name>, or $LVSEG_ACDC
#: (the lookup of test_lvseg_splits.py)
ACDC = next((Path(base) / "training" for base in (
    os.environ.get("LVSEG_ACDC"), _ROOT.parent / "shared" / "data" / "acdc",
    _ROOT.parent.parent / "shared" / "data" / "acdc")
    if base and (Path(base) / "training").is_dir()),
    Path("../shared/data/acdc/training"))
EF_TOLERANCE = 1.5  # EF points, analytic against voxelised (module docstring)
VOLUME_RTOL = 0.03


@pytest.mark.parametrize("size", [48, 64, 96])
def test_phantom_volumes_and_ef_match_the_half_ellipsoids(size: int) -> None:
    _, labels, truth = phantom_cine(size=size, n_frames=10)
    volumes = lv_volume_ml(labels == 3, truth.spacing)
    np.testing.assert_allclose(volumes, truth.volumes_ml, rtol=VOLUME_RTOL)
    assert truth.ef == pytest.approx(100 * (1 - 0.75**2 * 0.9))  # k_a^2 k_c, by hand: 49.375
    assert ejection_fraction(volumes[truth.ed], volumes[truth.es]) == pytest.approx(
        truth.ef, abs=EF_TOLERANCE)
    has_lv = (labels == 3).any(axis=(2, 3))
    assert not has_lv[:, 0].any() and not has_lv[:, -2:].any()  # above the base, beyond the apex
    assert has_lv[:, 1:5].all()


def test_a_4d_patient_folder_reads_back_with_the_known_ef(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient042", size=64, n_frames=10)
    _, labels, truth = phantom_cine(size=64, n_frames=10)
    case = read_patient(folder)
    assert case.patient_id == "patient042" and case.info["NbFrame"] == "10"
    assert case.volume.array.shape == (10, 10, 64, 64)
    assert case.volume.frames == tuple(range(1, 11))  # ACDC numbers frames from 1
    assert (case.ed, case.es) == (truth.ed, truth.es) and sorted(case.truth) == [0, truth.es]
    assert case.volume.spacing == pytest.approx(truth.spacing)
    np.testing.assert_array_equal(case.truth[case.es], labels[truth.es] == 3)
    edv = lv_volume_ml(case.truth[case.ed], case.volume.spacing)
    esv = lv_volume_ml(case.truth[case.es], case.volume.spacing)
    assert ejection_fraction(edv, esv) == pytest.approx(truth.ef, abs=EF_TOLERANCE)
    # the cine's images are the phantom's (stored as int16 thousandths)
    images, _, _ = phantom_cine(size=64, n_frames=10)
    np.testing.assert_allclose(case.volume.array / 1000, images, atol=6e-4)


def test_a_3d_only_patient_folder_holds_the_ed_and_es_frames(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient007", cine=False, size=48, n_frames=5)
    case = read_patient(folder)
    assert case.volume.array.shape == (2, 10, 48, 48) and case.volume.frames == (1, 3)
    assert (case.ed, case.es) == (0, 1) and sorted(case.truth) == [0, 1]
    # with a cine present, cine=False still reads the frame files
    folder = write_phantom_patient(tmp_path, "patient008", size=48, n_frames=5)
    assert read_patient(folder, cine=False).volume.frames == (1, 3)


def test_two_frames_marked_ed_and_es(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient009", cine=False, size=48, n_frames=5)
    case = case_from_frames(folder / "patient009_frame01.nii.gz",
                            folder / "patient009_frame03.nii.gz")
    assert (case.ed, case.es, case.patient_id) == (0, 1, "patient009_frame01")
    assert case.volume.array.shape == (2, 10, 48, 48) and not case.truth
    four_d = write_phantom_patient(tmp_path, "patient010", size=48, n_frames=5)
    four_d = four_d / "patient010_4d.nii.gz"
    for ed, es in ((four_d, folder / "patient009_frame03.nii.gz"),
                   (folder / "patient009_frame01.nii.gz", four_d)):  # either side
        with pytest.raises(ValueError, match=r"patient010_4d.nii.gz: an ED or ES input must be "
                           r"one 3-D frame; got 5 frames \(give a 4-D cine with its ED/ES "
                           r"indices\)$"):
            case_from_frames(ed, es)
    cine = case_from_volume(tmp_path / "patient010" / "patient010_4d.nii.gz", ed=0, es=2)
    assert (cine.ed, cine.es, cine.volume.n_frames) == (0, 2, 5)
    with pytest.raises(ValueError, match=r"es must be a frame index in \[0, 4\]; got 7"):
        case_from_volume(tmp_path / "patient010" / "patient010_4d.nii.gz", ed=0, es=7)
    with pytest.raises(ValueError, match="give both ED and ES frames or neither"):
        case_from_volume(tmp_path / "patient010" / "patient010_4d.nii.gz", ed=0)


def test_info_cfg_problems_are_named(tmp_path: Path) -> None:
    path = tmp_path / "Info.cfg"
    path.write_text("ED: 1\nES: twelve\n")
    with pytest.raises(ValueError, match=r"Info.cfg: ES must be a frame number >= 1 .*'twelve'"):
        read_info(path)
    path.write_text("ED 1\n")
    with pytest.raises(ValueError, match=r"Info.cfg, line 1: expected 'Key: value'"):
        read_info(path)
    folder = write_phantom_patient(tmp_path, "patient011", cine=False, size=40, n_frames=4)
    (folder / "Info.cfg").write_text("ED: 1\nES: 4\n")
    with pytest.raises(FileNotFoundError, match=r"no patient011_frame04.nii.gz \(the ED/ES frame"):
        read_patient(folder)


@pytest.mark.skipif(not ACDC.is_dir(), reason="the ACDC training data are not in ../shared/data/"
                    "acdc (research licence, not redistributed; set LVSEG_ACDC to its folder)")
def test_acdc_patient_volumes_equal_the_sum_of_the_2d_loaders_slice_areas() -> None:
    from lvseg.data.acdc import _load_frame
    from lvseg.data.types import LoadReport

    case = read_patient(ACDC / "patient001")
    assert case.volume.frames == (int(case.info["ED"]), int(case.info["ES"])) == (1, 12)
    for t, number in enumerate(case.volume.frames):
        image = ACDC / "patient001" / f"patient001_frame{number:02d}.nii.gz"
        slices = _load_frame(image, image.with_name(image.name.replace(".nii", "_gt.nii")),
                             "patient001", number, 3, LoadReport("x"))
        by_area = sum(s.lv_area_mm2 for s in slices) * case.volume.spacing[0] / 1000
        assert lv_volume_ml(case.truth[t], case.volume.spacing) == pytest.approx(by_area)
        np.testing.assert_array_equal(case.volume.array[t, slices[0].extras["z"]],
                                      slices[0].image)


@pytest.mark.parametrize("ed, es, message", [
    (0, 2, r"es must be a frame index in \[0, 1\]; got 2"),
    (-1, 0, r"ed must be a frame index in \[0, 1\]; got -1"),
    (0.0, 1, r"ed must be a frame index in \[0, 1\]; got 0.0"),
    (True, 1, r"ed must be a frame index in \[0, 1\]; got True"),
])
def test_segment_volume_refuses_a_frame_that_is_not_an_index_before_segmenting(
        ed: object, es: object, message: str) -> None:
    """A negative index is not counted from the end, a float or a bool is not rounded: each
    would check and score another frame than the one meant (a silent wrong answer)."""
    from lvseg.volumes import SliceResult, Volume, segment_volume

    calls = []

    def segmenter(images: np.ndarray, spacing: tuple[float, float, float]) -> list[SliceResult]:
        calls.append(images.shape)
        return [SliceResult(np.ones(images.shape[-2:], bool), True)] * 4

    volume = Volume(np.zeros((2, 2, 8, 8)), (10.0, 1.0, 1.0), "demo")
    with pytest.raises(ValueError, match=message):
        segment_volume(volume, segmenter, ed=ed, es=es)  # type: ignore[arg-type]
    assert calls == []
