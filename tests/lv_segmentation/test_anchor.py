"""lvseg.anchor: the LV found by its motion between frames, on ACDC-layout phantoms.

The phantom's ED and ES frames differ only where the LV (and its wall) changes size
(lvseg.volumes.phantoms). Here its LV is moved off the image centre and a static bright disc,
as bright as the blood pool, is put nearer the centre: a structure that does not beat. The
"U-Net trained on LV-centred crops" is modelled by :class:`Centred`: the bright blob nearest the
centre of its input, which is what such a network learns (benchmarks/lv_volumes/README.md). On
the whole slice it therefore marks the decoy, in a crop around the beating LV the LV.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from lvseg.anchor import (MOTION_SMOOTHING_PX, STACK_REACH_MM, locate_motion, motion_anchor,
                          motion_map)
from lvseg.centre_free import RunSegmenter
from lvseg.cli import main
from lvseg.locate import locate
from lvseg.runs import LoadedRun
from lvseg.volumes import Volume, dice_3d, phantom_cine, segment_volume, write_phantom_patient
from lvseg_testing import one_error_line, tiny_config

SIZE, SHIFT = 128, 33  # the LV 33 px (52 mm) right of the image centre
DECOY = (SIZE // 2 - 26, SIZE // 2, 10)  # x, y, radius (px): a static disc left of the centre
LV_SLICES = range(1, 7)  # the phantom's LV slices with more than 300 mm² at both phases


class Centred(torch.nn.Module):
    """Logit 1 on the bright blob (top 15 % of the input's range) nearest the input's centre."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = -torch.ones_like(x)
        for k, image in enumerate(x[:, 0].numpy()):
            hi, lo = image.max(), image.min()
            labels, n = ndimage.label(image > hi - 0.15 * (hi - lo))
            if n:
                middle = (np.array(image.shape) - 1) / 2
                centres = ndimage.center_of_mass(np.ones_like(image), labels, range(1, n + 1))
                nearest = 1 + int(np.argmin([np.hypot(*(np.array(c) - middle)) for c in centres]))
                out[k, 0][torch.from_numpy(labels == nearest)] = 1.0
        return out


def _beating(decoy: bool = True, cine: bool = False
             ) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """ED and ES frames :math:`(2, Z, H, W)` (or all 5 frames of the cine) of the off-centre
    phantom, their LV masks, the spacing."""
    images, labels, truth = phantom_cine(size=SIZE, n_frames=5)
    frames = slice(None) if cine else [truth.ed, truth.es]
    pair = np.roll(images[frames], SHIFT, axis=-1)
    lv = np.roll(labels[frames], SHIFT, axis=-1) == 3
    if decoy:
        rows, cols = np.mgrid[:SIZE, :SIZE]
        disc = np.hypot(cols - DECOY[0], rows - DECOY[1]) <= DECOY[2]
        pair[:, LV_SLICES.start:LV_SLICES.stop, disc] = 1.0
    return pair, lv, truth.spacing


def _run(crop_offset: float = 0.0, method: str = "unet") -> LoadedRun:
    return LoadedRun(tiny_config(method, crop_offset=crop_offset), Centred(), "centred", 0)


def test_the_anchor_lands_on_the_beating_lv_not_on_a_static_bright_disc() -> None:
    pair, lv, spacing = _beating()
    x, y = motion_anchor(pair, spacing[1:])
    rows, cols = np.nonzero(lv[0, 3])
    assert np.hypot(x - cols.mean(), y - rows.mean()) < 3.0  # px; the LV's radius is 24 px
    assert lv[0, 3, int(round(y)), int(round(x))]
    # the whole-slice map of a centred-crop U-Net marks the disc instead (why the anchor)
    found = locate("unet", Centred(), pair[0], spacing[1:], min_area_mm2=300.0)
    assert all(abs(found.centers[z, 0] - DECOY[0]) < 1.0 for z in LV_SLICES)


def test_the_motion_map_is_the_two_frame_difference_and_a_cine_s_range() -> None:
    rng = np.random.default_rng(0)
    grid = rng.normal(size=(2, 3, 20, 24))
    expected = ndimage.gaussian_filter(np.abs(grid[0] - grid[1]).mean(0), MOTION_SMOOTHING_PX)
    np.testing.assert_allclose(motion_map(grid), expected, atol=1e-12)
    cine = np.stack([grid[0], 0.5 * (grid[0] + grid[1]), grid[1]])  # a frame in between
    np.testing.assert_allclose(motion_map(cine[[2, 0, 1]]), expected, atol=1e-12)


@pytest.mark.parametrize("cine", [False, True])
def test_locate_motion_finds_every_lv_slice_and_maps_the_blob_back(cine: bool) -> None:
    pair, lv, spacing = _beating(cine=cine)
    found = locate_motion(Centred(), pair, spacing[1:], min_area_mm2=300.0)
    n = len(pair) * 10
    assert found is not None and found.centers.shape == (n, 2)
    assert found.masks.shape == (n, SIZE, SIZE)
    for t in range(len(pair)):
        for z in LV_SLICES:
            k, rows, cols = t * 10 + z, *np.nonzero(lv[t, z])
            assert found.has_lv[k]
            assert np.hypot(found.centers[k, 0] - cols.mean(),
                            found.centers[k, 1] - rows.mean()) < 1.0, (t, z)
            assert dice_3d(found.masks[k][None], lv[t, z][None]) > 0.95, (t, z)


def test_a_slice_whose_blob_stays_off_the_stack_is_centred_at_the_stack_s_median() -> None:
    """The stack step (STACK_REACH_MM): on one slice the LV is dark and a bright disc lies
    36 px (56 mm) below it, so every crop's blob there is the disc, even the crop at the
    stack's median; the slice is centred at the median (on the LV), the disc still says it has
    LV and is its fallback mask."""
    pair, lv, spacing = _beating(decoy=False)
    z = 3
    rows, cols = np.nonzero(lv[0, z])
    pair[0, z][lv[0, z]] = pair[0, z].min()  # the LV's blood pool as dark as the background
    grid_r, grid_c = np.mgrid[:SIZE, :SIZE]
    disc = np.hypot(grid_c - cols.mean(), grid_r - (rows.mean() + 36)) <= 10
    pair[0, z][disc] = pair.max()
    assert STACK_REACH_MM / spacing[1] < 36 - 10
    found = locate_motion(Centred(), pair, spacing[1:], min_area_mm2=300.0)
    assert found is not None and found.has_lv[z]
    others = [found.centers[t * 10 + k] for t in range(2) for k in LV_SLICES if (t, k) != (0, z)]
    np.testing.assert_allclose(found.centers[z], np.median(others, axis=0), atol=0.6)
    assert np.hypot(found.centers[z, 0] - cols.mean(), found.centers[z, 1] - rows.mean()) < 2.0
    assert dice_3d(found.masks[z][None], disc[None]) > 0.9  # the blob found, kept as fallback


def test_the_default_finder_segments_the_phantom_with_a_centred_crop_locator() -> None:
    """``find="auto"``: motion for a locator trained on centred crops (the old code's map
    finder put every LV on the disc: Dice 0)."""
    pair, lv, spacing = _beating()
    result = segment_volume(Volume(pair, spacing, "beating"), RunSegmenter(
        _run(), min_area_mm2=300.0))
    for t in range(2):
        assert dice_3d(result.masks[t, LV_SLICES.start:LV_SLICES.stop],
                       lv[t, LV_SLICES.start:LV_SLICES.stop]) > 0.9
    as_map = RunSegmenter(_run(), min_area_mm2=300.0, find="map")(pair, spacing)
    assert all(r.center is None or abs(r.center[0] - DECOY[0]) < 2 for r in as_map)


@pytest.mark.parametrize("find, crop_offset, frames, expected", [
    ("auto", 0.0, 2, "motion"), ("auto", 0.0, 30, "motion"), ("auto", 0.0, 1, "map"),
    ("auto", 1.0, 2, "map"), ("map", 0.0, 2, "map"), ("motion", 1.0, 2, "motion"),
    ("motion", 0.0, 1, "map"),
])
def test_which_finder(find: str, crop_offset: float, frames: int, expected: str) -> None:
    assert RunSegmenter(_run(crop_offset), find=find).finder(frames) == expected


def test_auto_with_an_off_centre_locator_is_the_map_finder_exactly() -> None:
    """The default keeps the 80-patient setting (a locator trained with --crop-offset 1)."""
    pair, _, spacing = _beating(decoy=False)
    auto = RunSegmenter(_run(1.0), min_area_mm2=300.0)(pair, spacing)
    as_map = RunSegmenter(_run(1.0), min_area_mm2=300.0, find="map")(pair, spacing)
    for a, b in zip(auto, as_map):
        assert a.has_lv == b.has_lv and a.center == b.center and np.array_equal(a.mask, b.mask)


@pytest.mark.parametrize("frames, reason", [(1, "it has a single frame"),
                                            (2, "its frames are identical")])
def test_motion_without_motion_falls_back_to_the_map_and_says_so(frames: int, reason: str
                                                                 ) -> None:
    pair, _, spacing = _beating(decoy=False)
    still = np.repeat(pair[:1], frames, axis=0)  # one frame, or the same frame twice
    volume = Volume(still, spacing, "still")
    asked = segment_volume(volume, RunSegmenter(_run(), min_area_mm2=300.0, find="motion"))
    plain = segment_volume(volume, RunSegmenter(_run(), min_area_mm2=300.0, find="map"))
    assert np.array_equal(asked.masks, plain.masks) and asked.no_lv == plain.no_lv
    said = [w for w in asked.warnings if "--find motion" in w]
    assert said == [f"frame 0, slice 1: --find motion: no motion to find the LV by ({reason}); "
                    "the LV of this volume was found on the locator's map (--find map)"]
    quiet = segment_volume(volume, RunSegmenter(_run(), min_area_mm2=300.0))  # auto: silent
    assert quiet.warnings == plain.warnings


@pytest.mark.parametrize("images, spacing, message", [
    (np.zeros((3, 8, 8)), (1.0, 1.0),
     r"frames of one stack, \(T, Z, H, W\); got shape \(3, 8, 8\)"),
    (np.zeros((1, 3, 8, 8)), (1.0, 1.0), "needs two frames or more .*got 1 .*--find map"),
    (np.full((2, 3, 8, 8), np.nan), (1.0, 1.0), "images must be finite"),
    (np.zeros((2, 3, 8, 8)), (0.0, 1.0), r"spacing must be \(row_mm, col_mm\), two positive"),
    (np.zeros((2, 3, 8, 8)), (1.0,), r"spacing must be .*got \(1.0,\)"),
    (np.zeros((2, 3, 8, 8)), None, r"spacing must be \(row_mm, col_mm\), .*got None"),
])
def test_bad_input_is_refused(images: np.ndarray, spacing: tuple[float, ...], message: str
                              ) -> None:
    for call in (lambda: motion_anchor(images, spacing),
                 lambda: locate_motion(Centred(), images, spacing)):
        with pytest.raises(ValueError, match=message):
            call()


def test_an_unknown_finder_and_a_frame_without_its_time_axis_are_refused() -> None:
    with pytest.raises(ValueError, match="find must be one of auto, map, motion; got 'heart'"):
        RunSegmenter(_run(), find="heart")
    images, _, truth = phantom_cine(size=48, n_frames=1)
    with pytest.raises(ValueError,
                       match=r"\(T, Z, H, W\); got shape \(10, 48, 48\) .*images\[None\]"):
        RunSegmenter(_run())(images[0], truth.spacing)  # Z would be read as frames


def test_cli_find(tiny_runs: dict[str, Path], tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=4)
    for find, finder in (("auto", "motion"), ("map", "map")):
        out = tmp_path / f"{find}.json"
        argv = ["evaluate", str(tiny_runs["unet"]), "--protocol", "volumes", "--data-dir",
                str(tmp_path / "acdc"), "--split", "all", "--json", str(out), "--device", "cpu"]
        assert main(argv + ([] if find == "auto" else ["--find", find])) == 0
        report = json.loads(out.read_text())
        assert (report["find"], report["finder"]) == (find, finder)
        star = ("delta", "n_lines", "edge_offset", "smoothing")
        assert [report[k] for k in star] == [None] * 4  # a unet run's mask: no star
        assert f"LV found by {finder}" in capsys.readouterr().out
    assert main(["predict", str(tiny_runs["unet"]), str(tmp_path / "acdc" / "patient901"),
                 "--center", "3,4", "--find", "motion", "--out", str(tmp_path / "o")]) == 2
    assert "--find applies to volumes" in one_error_line(capsys)
    assert main(["evaluate", str(tiny_runs["unet"]), "--find", "motion"]) == 2
    assert "--find applies to --protocol volumes" in one_error_line(capsys)
    with pytest.raises(SystemExit):
        main(["evaluate", str(tiny_runs["unet"]), "--protocol", "volumes", "--find", "heart"])
    assert "invalid choice: 'heart'" in capsys.readouterr().err

