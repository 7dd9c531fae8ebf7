"""Slice validation and LoadReport bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from lvseg.data import LoadReport, Skipped, Slice


def test_slice_converts_and_derives():
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 1
    s = Slice(np.arange(24, dtype=np.int16).reshape(4, 6), mask, [1.5, 2], "p7", "x.dcm")
    assert s.image.dtype == np.float32 and s.mask.dtype == bool
    assert s.spacing == (1.5, 2.0) and s.shape == (4, 6) and s.has_lv
    assert s.lv_area_mm2 == 6 * 1.5 * 2.0 and s.extras == {}
    with pytest.raises(AttributeError):
        s.patient_id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("image", "mask", "spacing", "message"),
    [
        (np.zeros(5), np.zeros(5), (1, 1), "image must have shape (H, W); got (5,)"),
        (np.zeros((4, 4)), np.zeros((4, 5)), (1, 1), "mask must have the image's shape (4, 4)"),
        (np.zeros((4, 4)), np.zeros((4, 4)), (1, 0), "spacing must be (row_mm, col_mm)"),
        (np.zeros((4, 4)), np.zeros((4, 4)), 1.0, "two positive numbers; got 1.0"),
        (np.zeros((4, 4)), np.zeros((4, 4)), (1, 1, 1), "got (1, 1, 1)"),
        (np.zeros((4, 4)), np.zeros((4, 4)), (1, float("nan")), "got (1, nan)"),
    ],
)
def test_slice_rejects_invalid_fields(image, mask, spacing, message):
    with pytest.raises(ValueError) as info:
        Slice(image, mask, spacing, "p", "s")
    assert message in str(info.value)


def test_load_report_counts_and_messages():
    report = LoadReport("data")
    report.add_loaded(5)
    report.skip("no_lv", "a", "a: empty")
    report.skip("unreadable_dicom", "b", "b: broken")
    report.skip("no_lv", "c", "c: empty")
    assert report.loaded == 5 and report.n_skipped == 3
    assert report.counts() == {"no_lv": 2, "unreadable_dicom": 1}
    assert report.messages("no_lv") == ["a: empty", "c: empty"]
    assert report.skipped[1] == Skipped("unreadable_dicom", "b", "b: broken")
    assert str(report) == "data: 5 loaded, 3 skipped (no_lv: 2, unreadable_dicom: 1)"
