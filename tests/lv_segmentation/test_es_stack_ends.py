"""The ES stack-end check (issue #19): an end of the ES stack that did not contract is warned about."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lvseg.volumes import (
    ES_END_FACTOR,
    SliceResult,
    check_es_stack_ends,
    lv_area_mm2,
    phantom_cine,
    predict_volumes,
    write_phantom_patient,
)

SPACING = (10.0, 1.5, 1.25)  # (dz, dy, dx); a pixel is 1.875 mm²
FRAMES = (1, 12)  # the ED and ES frame numbers the warnings name


def _stack(ed_px: list[int], es_px: list[int], size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """ED and ES masks ``(Z, size, size)`` with the given LV pixel counts per slice."""
    ed = np.zeros((len(ed_px), size, size), bool)
    es = np.zeros_like(ed)
    for z, (a, b) in enumerate(zip(ed_px, es_px)):
        ed[z].flat[:a] = True
        es[z].flat[:b] = True
    return ed, es


def _areas(ed: np.ndarray, es: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """The per-slice LV areas (mm²) of ED and ES masks ``(Z, H, W)``: what the checks take."""
    return lv_area_mm2(ed, spacing), lv_area_mm2(es, spacing)


def _slices(warnings: list[str]) -> list[int]:
    """The slice indices the warnings name, each checked to name the ES frame (``FRAMES[1]``)."""
    names = [w.split(":")[0] for w in warnings]
    assert all(n.startswith(f"frame {FRAMES[1]}, slice ") for n in names), names
    return [int(n.rsplit(" ", 1)[1]) for n in names]


def _reference(ed_px: list[int], es_px: list[int], factor: float) -> list[int]:
    """The rule written out with plain lists: ends of the ES stack, ED none or ratio > factor x
    the median ratio over the slices with LV at both phases."""
    ends = [z for z, b in enumerate(es_px) if b > 0]
    if len(ends) < 2:
        return []
    ratios = sorted(b / a for a, b in zip(ed_px, es_px) if a > 0 and b > 0)
    n = len(ratios)
    median = (ratios[(n - 1) // 2] + ratios[n // 2]) / 2 if n else float("nan")
    warned = []
    for z in (ends[0], ends[-1]):
        if ed_px[z] == 0 or es_px[z] / ed_px[z] > factor * median:
            warned.append(z)
    return warned


def test_an_end_that_kept_its_ed_area_is_named_with_both_ratios() -> None:
    # the LV keeps half its area at ES; slice 4 (an end) keeps all of it: 2 x the median
    # ES/ED 0.5 on slices 1-3, 1.0 at slice 4 (> 1.75 x 0.5); base first (the halves hold
    # 1100 against 800 px at ED, 550 against 600 at ES: 250 more toward slice 1)
    ed, es = _stack([0, 600, 500, 400, 400, 0], [0, 300, 250, 200, 400, 0])
    warnings = check_es_stack_ends(*_areas(ed, es, SPACING[1:]), frames=FRAMES)
    assert warnings == [f"frame 12, slice 4: an end of the LV stack at ES kept 1 times its ED area "
                        f"({400 * 1.875:.4g} mm²) while the LV kept 0.5 (median of 4 slices); "
                        "the LV may end a slice earlier (atrium, outflow tract or apex wall?)"]


def test_only_the_two_ends_are_checked_and_lv_at_es_only_warns_there() -> None:
    # slice 2 keeps its ED area but is inside the stack: not an end, no warning
    ed, es = _stack([400, 400, 400, 400, 0], [200, 200, 400, 200, 0])
    assert check_es_stack_ends(*_areas(ed, es, SPACING[1:]), frames=FRAMES) == []
    # slice 4 has LV at ES only: the ES stack reaches beyond the ED stack
    ed, es = _stack([400, 400, 400, 400, 0], [200, 200, 200, 200, 90])
    (warning,) = check_es_stack_ends(*_areas(ed, es, SPACING[1:]), frames=FRAMES)
    assert warning.startswith("frame 12, slice 4: an end of the LV stack at ES has LV "
                              f"({90 * 1.875:.4g} "
                              "mm²) where ED has none")
    # the same slice inside the ES stack is not this check's (nor check_es_area's) business
    ed, es = _stack([400, 400, 0, 400, 400], [200, 200, 90, 200, 200])
    assert check_es_stack_ends(*_areas(ed, es, SPACING[1:]), frames=FRAMES) == []


def test_the_factor_is_the_named_constant_and_a_ratio_at_it_does_not_warn() -> None:
    at = int(200 * ES_END_FACTOR)  # median 0.5: the end at ES_END_FACTOR x 0.5 exactly
    ed, es = _stack([400, 400, 400, 400, 400], [200, 200, 200, 200, at])
    assert check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES) == []
    ed, es = _stack([400, 400, 400, 400, 400], [200, 200, 200, 200, at + 1])
    assert _slices(check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES)) == [4]
    assert check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES, factor=2.0) == []
    with pytest.raises(ValueError, match="factor must be a finite number > 0; got 0"):
        check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES, factor=0)
    with pytest.raises(ValueError, match=r"got shapes \(5,\) and \(\)"):
        check_es_stack_ends(*_areas(ed, es[0], (1.0, 1.0)), frames=FRAMES)


def test_fewer_than_two_es_slices_have_no_ends() -> None:
    ed, es = _stack([400, 400, 400], [0, 400, 0])
    assert check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES) == []
    ed, es = _stack([400, 400, 400], [0, 0, 0])
    assert check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES) == []


def test_random_stacks_agree_with_a_plain_reference() -> None:
    rng = np.random.default_rng(0)
    warned = 0
    for _ in range(300):
        n = int(rng.integers(1, 9))
        ed_px = [int(v) * int(rng.random() > 0.2) for v in rng.integers(50, 600, n)]
        es_px = [int(v * rng.uniform(0.2, 1.3)) * int(rng.random() > 0.2) for v in ed_px]
        es_px = [b if b or rng.random() > 0.1 else int(rng.integers(20, 200)) for b in es_px]
        ed, es = _stack(ed_px, es_px, size=32)
        expected = _reference(ed_px, es_px, ES_END_FACTOR)
        warnings = check_es_stack_ends(*_areas(ed, es, (1.0, 1.0)), frames=FRAMES)
        assert _slices(warnings) == expected, (ed_px, es_px)
        warned += bool(expected)
    assert 20 < warned < 280  # both outcomes were exercised


def test_segment_volume_checks_only_when_ed_and_es_are_given_and_keeps_the_masks(
        segment_ed_es) -> None:
    # ES/ED 0.5 on slices 1-3, 1.0 at slice 4 (> 1.75 x 0.5); base first (the halves hold
    # 1100 against 800 px at ED, 550 against 600 at ES: 250 more toward slice 1)
    ed, es = _stack([0, 600, 500, 400, 400, 0], [0, 300, 250, 200, 400, 0])
    plain, checked = segment_ed_es(np.stack([ed, es]), SPACING)  # also: the masks are kept
    ends = [w for w in checked.warnings if "an end of the LV stack at ES" in w]
    assert plain.warnings == [] and _slices(ends) == [4]
    # (slice 4 does not taper toward the apex at ED (1.0) nor at ES (2.0): check_apex_end's)
    assert [w.split(":")[0] for w in checked.warnings if "toward the apex" in w] == [
        "frame 1, slice 4", "frame 12, slice 4"]


def test_predict_counts_a_false_lv_at_the_es_apex_in_its_json(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path / "data", "patient007", size=40, n_frames=3,
                                   cine=False)
    _, labels, truth = phantom_cine(size=40, n_frames=3)
    lv = labels == 3
    # the phantom's LV: slices 1-7 at ED, 1-6 at ES, contracting to about half its area
    assert [z for z in range(lv.shape[1]) if lv[truth.es, z].any()] == [1, 2, 3, 4, 5, 6]

    def segmenter(false_lv: bool):
        def segment(images: np.ndarray, spacing) -> list[SliceResult]:
            es = lv[truth.es].copy()
            if false_lv:  # slice 7 at ES drawn as at ED: past the end of the contracted LV
                es[7] = lv[truth.ed, 7]
            return [SliceResult(m, bool(m.any())) for m in np.concatenate([lv[truth.ed], es])]
        return segment

    (clean,) = predict_volumes([folder], segmenter(False), tmp_path / "clean")
    (record,) = predict_volumes([folder], segmenter(True), tmp_path / "out")
    assert clean["warnings"] == []
    # ACDC numbers frames from 1: the ES frame (index 1 of the cine) is frame 2
    # the stack-end warning, then check_apex_end's (slice 7 at its ED size does not taper)
    assert [w.split(":")[0] for w in record["warnings"]] == [f"frame {truth.es + 1}, slice 7"] * 2
    assert "an end of the LV stack at ES" in record["warnings"][0]
    assert "the last LV slice toward the apex" in record["warnings"][1]
