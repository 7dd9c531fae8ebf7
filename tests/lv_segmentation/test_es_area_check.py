"""The ES-versus-ED area check (issue #19): a slice whose LV grows in systole is warned about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from lvseg.volumes import (
    ES_AREA_FACTOR,
    SliceResult,
    Volume,
    check_es_area,
    lv_area_mm2,
    phantom_cine,
    predict_volumes,
    segment_volume,
    write_phantom_patient,
)

SPACING = (10.0, 1.5, 1.25)  # (dz, dy, dx); a pixel is 1.875 mm²
FRAMES = (1, 12)  # the ED and ES frame numbers the warnings name


def _square(side: int, size: int = 32) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[4:4 + side, 4:4 + side] = True
    return mask


def _pair() -> np.ndarray:
    """ED and ES masks ``(2, 4, 32, 32)``: slice 0 shrinks, 1 grows 1.5 times (10x10 -> 10x15),
    2 keeps its area, 3 has LV at ES only."""
    masks = np.zeros((2, 4, 32, 32), bool)
    masks[0, 0], masks[1, 0] = _square(12), _square(9)
    masks[0, 1] = _square(10)
    masks[1, 1, 4:14, 4:19] = True
    masks[0, 2] = masks[1, 2] = _square(11)
    masks[1, 3] = _square(6)
    return masks


def _areas(ed: np.ndarray, es: np.ndarray, spacing=SPACING[1:]) -> tuple[np.ndarray, ...]:
    """The per-slice LV areas (mm²) of ED and ES masks ``(Z, H, W)``."""
    return lv_area_mm2(ed, spacing), lv_area_mm2(es, spacing)


def _returning(masks: np.ndarray):
    def segment(images: np.ndarray, spacing) -> list[SliceResult]:
        return [SliceResult(m, bool(m.any())) for m in masks.reshape(-1, *masks.shape[-2:])]
    return segment


def test_the_slice_grown_1_5_times_is_named_with_its_areas_in_mm2() -> None:
    masks = _pair()
    warnings = check_es_area(*_areas(masks[0], masks[1]), frames=FRAMES)
    ed, es = 100 * 1.875, 150 * 1.875  # by hand: pixels times dy * dx
    assert warnings == [f"frame 12, slice 1: the LV area at ES ({es:.4g} mm²) is 1.5 times its "
                        "area at ED "
                        f"({ed:.4g} mm²); the systolic contour is likely wrong"]
    assert "(281.2 mm²)" in warnings[0] and "(187.5 mm²)" in warnings[0]


def test_equal_and_shrinking_areas_and_lv_at_one_phase_only_give_no_warning() -> None:
    masks = _pair()
    masks[1, 1] = masks[0, 1]  # the grown slice back to equal: slice 3 (ES only) stays
    assert check_es_area(*_areas(masks[0], masks[1]), frames=FRAMES) == []
    masks[0, 3], masks[1, 3] = masks[1, 3], False  # LV at ED only
    assert check_es_area(*_areas(masks[0], masks[1]), frames=FRAMES) == []


def test_the_factor_is_the_named_constant_and_a_ratio_at_it_does_not_warn() -> None:
    ed = np.zeros((1, 32, 32), bool)
    es = ed.copy()
    ed[0, :20, :20] = True  # 400 px
    es[0].flat[:int(400 * ES_AREA_FACTOR)] = True  # exactly the factor: not above it
    assert check_es_area(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES) == []
    es[0].flat[int(400 * ES_AREA_FACTOR)] = True
    assert len(check_es_area(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES)) == 1
    assert check_es_area(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES, factor=2.0) == []
    with pytest.raises(ValueError, match="factor must be a finite number > 0; got 0"):
        check_es_area(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES, factor=0)
    with pytest.raises(ValueError, match=r"one length; got shapes \(1,\) and \(2,\)"):
        check_es_area([400.0], [400.0, 1.0], frames=FRAMES)
    with pytest.raises(ValueError, match=r"es_areas must be finite areas >= 0 mm²; got \[-1.0\]"):
        check_es_area([400.0], [-1.0], frames=FRAMES)


def test_the_ratio_rule_on_areas_against_a_hand_computed_reference() -> None:
    # ED and ES areas (mm²) of six slices, factor 1.25; by hand, ES / ED per slice:
    ed = [200.0, 200.0, 0.0, 200.0, 80.0, 300.0]
    es = [250.0, 250.5, 50.0, 100.0, 120.0, 0.0]
    # 0: 1.25, at the factor -> no; 1: 1.0025 x 1.25 -> yes; 2: no LV at ED -> no;
    # 3: 0.5 (ED is 2 times ES: a rule with ED and ES swapped would warn) -> no;
    # 4: 1.5 -> yes; 5: no LV at ES -> no.
    warnings = check_es_area(ed, es, frames=FRAMES)
    assert [w.split(":")[0] for w in warnings] == ["frame 12, slice 1", "frame 12, slice 4"]
    assert warnings[1] == ("frame 12, slice 4: the LV area at ES (120 mm²) is 1.5 times its "
                           "area at ED "
                           "(80 mm²); the systolic contour is likely wrong")
    # slice 0 is above 1.2
    assert "is 1.25 times" in check_es_area(ed, es, frames=FRAMES, factor=1.2)[0]
    assert check_es_area(ed, es, frames=FRAMES, factor=1.5) == []  # slice 4's 1.5 is not above it


def test_segment_volume_checks_only_when_ed_and_es_are_given_and_keeps_the_masks() -> None:
    masks = _pair()
    volume = Volume(np.zeros(masks.shape), SPACING, "pair", frames=[1, 12])
    plain = segment_volume(volume, _returning(masks))
    checked = segment_volume(volume, _returning(masks), ed=0, es=1)
    # (slice 3, LV at ES only and an end of the ES stack, is check_es_stack_ends' warning)
    area = [w for w in checked.warnings if "the LV area at ES" in w]
    assert plain.warnings == [] and len(area) == 1
    assert area[0].startswith("frame 12, slice 1: the LV area at ES")
    np.testing.assert_array_equal(checked.masks, masks)  # a warning only
    np.testing.assert_array_equal(checked.volumes_ml, plain.volumes_ml)
    reversed_ = segment_volume(volume, _returning(masks), ed=1, es=0)  # slice 0 grows 1.78x
    named = [w.split(":")[0] for w in reversed_.warnings if "the LV area at ES" in w]
    assert named == ["frame 1, slice 0"]  # the ES frame is now frame 1


def test_predict_on_a_patient_folder_counts_the_warning_in_its_json(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path / "data", "patient007", size=40, n_frames=3,
                                   cine=False)
    _, labels, truth = phantom_cine(size=40, n_frames=3)

    def inflated_es(images: np.ndarray, spacing) -> list[SliceResult]:
        # the folder holds the ED and ES frames only: volume frames 0 (ED) and 1 (ES)
        results = []
        for t, frame in enumerate((truth.ed, truth.es)):
            for z in range(images.shape[1]):
                mask = labels[frame, z] == 3
                if t == 1 and z == 4:
                    mask = ndimage.binary_dilation(mask, iterations=4)
                results.append(SliceResult(mask, bool(mask.any())))
        return results

    (record,) = predict_volumes([folder], inflated_es, tmp_path / "out")
    # ACDC numbers frames from 1: the ES frame (index 1 of the cine) is frame 2
    assert [w.split(":")[0] for w in record["warnings"]] == [f"frame {truth.es + 1}, slice 4"]

