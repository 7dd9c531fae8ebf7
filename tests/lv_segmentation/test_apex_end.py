"""The apex-end check (issue #19): the last LV slice of a stack that does not taper warns."""

from __future__ import annotations

import numpy as np
import pytest

from lvseg.volumes import APEX_END_FACTOR, check_apex_end, lv_area_mm2
from lvseg.volumes import plausibility

SPACING = (10.0, 1.5, 1.25)  # (dz, dy, dx); a pixel is 1.875 mm²


def _stack(pixels: list[int], size: int = 32) -> np.ndarray:
    """Masks ``(Z, size, size)`` with the given LV pixel counts per slice."""
    masks = np.zeros((len(pixels), size, size), bool)
    for z, n in enumerate(pixels):
        masks[z].flat[:n] = True
    return masks


def _reference(pixels: list[int], factor: float) -> list[int]:
    """The rule written out with plain lists: the last slice with LV, warned when at least two
    slices have LV and it has >= factor times the pixels of the LV slice before it."""
    with_lv = [z for z, n in enumerate(pixels) if n > 0]
    if len(with_lv) < 2:
        return []
    end, before = with_lv[-1], with_lv[-2]
    return [end] if pixels[end] >= factor * pixels[before] else []


def test_a_false_lv_past_the_apex_is_named_with_both_areas() -> None:
    # by hand: slice 4 (the last with LV) has 200 px, slice 3 before it 200 px: ratio 1 >= 0.9
    areas = lv_area_mm2(_stack([600, 500, 300, 200, 200, 0]), SPACING[1:])
    assert check_apex_end(areas, 13) == (
        f"frame 13, slice 4: the last LV slice toward the apex ({200 * 1.875:.4g} mm²) is 1 "
        f"times its neighbour toward the base ({200 * 1.875:.4g} mm²); the LV should taper there "
        "(a false LV past the apex?)")
    assert "(375 mm²)" in check_apex_end(areas, 13)


def test_a_tapering_apex_a_gap_and_fewer_than_two_slices() -> None:
    # 150 of 200 px: 0.75 < 0.9, tapering
    assert check_apex_end([600.0, 200.0, 150.0, 0.0], 1) is None
    # the slice before the end is the previous slice WITH LV (slice 1 here, across the gap)
    assert check_apex_end([600.0, 200.0, 0.0, 190.0], 1).startswith("frame 1, slice 3: ")
    assert check_apex_end([600.0, 0.0, 0.0], 1) is None
    assert check_apex_end([0.0, 0.0], 1) is None
    # only the apex end (the last slice; slices are base first): a base end of any size is fine
    assert check_apex_end([900.0, 400.0, 100.0], 1) is None


def test_the_factor_is_the_named_constant_and_at_it_warns() -> None:
    assert APEX_END_FACTOR == 0.9
    assert check_apex_end([500.0, 100.0, 90.0], 1) is not None  # 0.9: at the factor, warns
    assert check_apex_end([500.0, 100.0, 89.9], 1) is None
    assert check_apex_end([500.0, 100.0, 90.0], 1, factor=0.95) is None
    with pytest.raises(ValueError, match="factor must be a finite number > 0; got 0"):
        check_apex_end([1.0, 1.0], 1, factor=0)
    with pytest.raises(ValueError, match=r"areas must be finite areas >= 0 mm²; got \[1.0, -1"):
        check_apex_end([1.0, -1.0], 1)
    with pytest.raises(ValueError, match=r"areas must be 1-D, one area per slice; got shape \(1,"):
        check_apex_end([[1.0, 1.0]], 1)


def test_random_stacks_agree_with_a_plain_reference() -> None:
    rng = np.random.default_rng(1)
    warned = 0
    for _ in range(300):
        n = int(rng.integers(1, 9))
        pixels = [int(v) * int(rng.random() > 0.25) for v in rng.integers(20, 600, n)]
        areas = lv_area_mm2(_stack(pixels), (1.0, 1.0))
        expected = _reference(pixels, APEX_END_FACTOR)
        got = check_apex_end(areas, 5)
        named = [] if got is None else [int(got.split(":")[0].rsplit(" ", 1)[1])]
        assert named == expected, pixels
        warned += bool(expected)
    assert 20 < warned < 280  # both outcomes were exercised


def test_segment_volume_checks_the_ed_and_the_es_apex_and_keeps_the_masks(segment_ed_es) -> None:
    # ED: slice 4 keeps the size of slice 3 (a false LV past the apex); ES tapers
    ed = _stack([0, 400, 400, 300, 300, 0])
    es = _stack([0, 200, 200, 150, 60, 0])
    plain, checked = segment_ed_es(np.stack([ed, es]), SPACING)  # also: the masks are kept
    apex = [w for w in checked.warnings if "toward the apex" in w]
    assert plain.warnings == [] and [w.split(":")[0] for w in apex] == ["frame 1, slice 4"]


def test_the_stack_checks_stay_importable_from_plausibility() -> None:
    from lvseg.volumes import stack_checks
    from lvseg.volumes.plausibility import check_apex_end as again, check_es_area

    assert again is check_apex_end and check_es_area is stack_checks.check_es_area
    assert plausibility.ES_END_FACTOR == stack_checks.ES_END_FACTOR
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        plausibility.nothing  # noqa: B018


def test_the_apex_end_is_told_from_the_taper_when_the_stack_runs_apex_first() -> None:
    """A stack stored apex first (some DICOM series, other NIfTI writers): the order comes from
    the areas (the base half holds more), so the false LV past the apex is still named, at slice
    1 now, and a tapering reversed stack raises nothing."""
    from lvseg.volumes.stack_checks import apex_is_last

    forward = [600, 500, 300, 200, 200, 0]
    reverse = forward[::-1]  # slice 0 empty, slice 1 the false LV, slice 5 the base
    ed = lv_area_mm2(_stack(reverse), SPACING[1:])
    es = lv_area_mm2(_stack([0, 150, 150, 200, 300, 400]), SPACING[1:])
    assert apex_is_last(lv_area_mm2(_stack(forward), SPACING[1:])) is True
    # halves by hand (px): first 200 + 200 + 150 + 150 = 700, last 500 + 600 + 300 + 400 = 1800
    assert apex_is_last(ed, es) is False  # 1800 >= 1.5 x 700
    assert apex_is_last(ed, es, margin=2.6) is True  # 1800 < 2.6 x 700: the stored order
    warning = check_apex_end(ed, 1, apex_last=False)
    assert warning is not None and warning.startswith("frame 1, slice 1: ")
    assert check_apex_end(lv_area_mm2(_stack([0, 100, 300, 500, 600]), SPACING[1:]), 1,
                          apex_last=False) is None
    # read the wrong way round, the base end (600 after 500: 1.2) would have warned
    assert check_apex_end(lv_area_mm2(_stack([0, 100, 300, 500, 600]), SPACING[1:]), 1) is not None
    assert apex_is_last([0.0, 0.0]) is True  # nothing to tell: the stored order
