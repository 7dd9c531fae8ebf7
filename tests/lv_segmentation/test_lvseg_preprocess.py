"""Resampling, normalisation, cropping, centres and object radii of preprocess()."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from lvseg.data import Slice, make_phantoms, object_radius, preprocess, resample
from lvseg.data.preprocessing import (
    REASON_LV_OUTSIDE_CROP,
    REASON_NO_LV,
    REASON_NO_LV_AFTER_RESAMPLING,
)


def _disk(shape, center_mm, radius_mm, spacing):
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    y, x = (rows + 0.5) * spacing[0], (cols + 0.5) * spacing[1]  # centres, edge-aligned
    return (y - center_mm[0]) ** 2 + (x - center_mm[1]) ** 2 < radius_mm**2


@pytest.mark.parametrize("spacing", [(0.9, 0.9), (1.0, 1.6), (2.1, 1.9), (1.367188, 1.367188)])
def test_resampling_preserves_area_and_position(spacing):
    rng = np.random.default_rng(0)
    shape = (int(160 / spacing[0]), int(170 / spacing[1]))
    ratios = []
    for _ in range(12):
        center, radius = rng.uniform(50, 110, 2), rng.uniform(12, 30)
        mask = _disk(shape, center, radius, spacing)
        image = mask * 100.0 + 10.0
        new_image, new_mask = resample(image, mask, spacing, 1.37)
        assert new_image.shape == new_mask.shape == tuple(
            round(n * s / 1.37) for n, s in zip(shape, spacing)
        )
        ratios.append(new_mask.sum() * 1.37**2 / (mask.sum() * spacing[0] * spacing[1]))
        before = (np.array(ndimage.center_of_mass(mask)) + 0.5) * spacing
        after = (np.array(ndimage.center_of_mass(new_mask)) + 0.5) * 1.37
        np.testing.assert_allclose(after, before, atol=0.3)
        assert new_image.dtype == np.float32
        assert new_image.min() >= 10.0 and new_image.max() <= 110.0
    # each area within the quantisation error of a coarse raster, and no systematic bias
    assert max(abs(r - 1) for r in ratios) < 0.04
    assert abs(np.mean(ratios) - 1) < 0.01


def test_resampling_to_the_same_spacing_is_a_copy():
    image, mask = np.arange(12.0).reshape(3, 4), np.eye(3, 4, dtype=bool)
    new_image, new_mask = resample(image, mask, (1.37, 1.37), 1.37)
    np.testing.assert_array_equal(new_image, image)
    np.testing.assert_array_equal(new_mask, mask)


def test_real_slices_keep_their_lv_area(sunnybrook):
    slices = sunnybrook[0]
    data, report = preprocess(slices)
    assert report.loaded == 56 and report.n_skipped == 0 and len(data) == 56
    areas_mm2 = data.masks.reshape(56, -1).sum(1) * 1.37**2
    for s, area in zip(slices, areas_mm2):
        assert area == pytest.approx(s.lv_area_mm2, rel=0.03)
    assert data.patient_ids == tuple(s.patient_id for s in slices)
    assert data.sources == tuple(s.source for s in slices)


def test_outputs_are_ready_for_torch(sunnybrook):
    data, _ = preprocess(sunnybrook[0][:5], size=(96, 112))
    assert data.images.shape == (5, 1, 96, 112) and data.images.dtype == np.float32
    assert data.masks.shape == (5, 96, 112) and data.masks.dtype == bool
    assert data.centers.shape == (5, 2) and data.radii.shape == (5,) and data.spacing == 1.37
    for k in range(5):
        row, col = ndimage.center_of_mass(data.masks[k])
        np.testing.assert_allclose(data.centers[k], (col, row), atol=1e-4)
        np.testing.assert_allclose(data.centers[k], (56, 48), atol=0.51)  # LV in the middle
        assert 0 < data.radii[k] < 40
    tensors = data.to_tensors()
    assert tensors["images"].shape == (5, 1, 96, 112) and tensors["masks"].dtype == torch.bool
    assert tensors["centers"].dtype == torch.float32
    part = data.subset([4, 1])
    assert part.patient_ids == (data.patient_ids[4], data.patient_ids[1])
    np.testing.assert_array_equal(part.images[0], data.images[4])
    np.testing.assert_array_equal(part.slice_indices, [4, 1])


def test_robust_normalisation_and_padding():
    slices = make_phantoms(3, size=64, seed=0)  # already at 1.37 mm: no resampling
    data, _ = preprocess(slices, size=64, crop="image")
    for k, s in enumerate(slices):
        image = data.images[k, 0]
        assert image.mean() == pytest.approx(0.0, abs=1e-5)
        assert image.std() == pytest.approx(1.0, abs=1e-4)
        lo, hi = np.percentile(s.image, (1, 99))
        clipped = np.clip(s.image, lo, hi)
        expected = (clipped - clipped.mean()) / clipped.std()
        np.testing.assert_allclose(image, expected, atol=1e-4)
    padded, _ = preprocess(slices, size=(80, 90), crop="image")
    assert padded.images.shape == (3, 1, 80, 90)
    np.testing.assert_array_equal(padded.images[:, :, 8:72, 13:77], data.images)
    for k in range(3):
        assert padded.images[k, 0, 0, 0] == data.images[k, 0].min()
    assert not padded.masks[:, :8].any() and padded.masks.sum() == data.masks.sum()
    raw, _ = preprocess(slices, size=64, crop="image", normalize=False)
    np.testing.assert_array_equal(raw.images[:, 0], np.stack([s.image for s in slices]))


def test_dropped_slices_are_counted_with_reasons():
    good = make_phantoms(2, size=64, seed=0)
    empty = Slice(np.ones((64, 64)), np.zeros((64, 64)), (1.37, 1.37), "p", "empty.dcm")
    speck = np.zeros((64, 64), bool)
    speck[13, 13] = True
    tiny = Slice(np.ones((64, 64)), speck, (0.2, 0.2), "p", "tiny.dcm")
    corner = np.zeros((64, 64), bool)
    corner[1:4, 1:4] = True
    far = Slice(np.ones((64, 64)), corner, (1.37, 1.37), "p", "far.dcm")
    data, report = preprocess([empty, good[0], tiny, far, good[1]], size=32, crop="image")
    np.testing.assert_array_equal(data.slice_indices, [1, 4])
    assert report.loaded == 2 and report.counts() == {
        REASON_NO_LV: 1, REASON_NO_LV_AFTER_RESAMPLING: 1, REASON_LV_OUTSIDE_CROP: 1,
    }
    assert report.messages(REASON_NO_LV) == ["empty.dcm: the mask is empty (no LV)"]
    assert report.messages(REASON_NO_LV_AFTER_RESAMPLING) == [
        "tiny.dcm: the LV (1 px) vanished when resampled to 1.37 mm"
    ]
    assert report.messages(REASON_LV_OUTSIDE_CROP) == [
        "far.dcm: the LV lies outside the 32x32 crop"
    ]
    nothing, report = preprocess([empty])
    assert nothing.images.shape == (0, 1, 128, 128) and report.loaded == 0


def _radius_brute_force(mask, center):
    """Distance to the nearest pixel square outside the mask (the border ring included)."""
    padded = np.pad(mask, 1)
    rows, cols = np.nonzero(~padded)
    x, y = center[0] + 1, center[1] + 1
    dx = np.maximum(np.abs(cols - x) - 0.5, 0)
    dy = np.maximum(np.abs(rows - y) - 0.5, 0)
    return np.hypot(dx, dy).min()


@pytest.mark.parametrize("seed", range(12))
def test_object_radius_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = ndimage.binary_opening(rng.random((24, 20)) < 0.75)
    rows, cols = np.nonzero(mask)
    k = int(rng.integers(len(rows)))
    center = (cols[k] + rng.uniform(-0.5, 0.5), rows[k] + rng.uniform(-0.5, 0.5))
    assert object_radius(mask, center) == pytest.approx(_radius_brute_force(mask, center))


def test_object_radius_of_a_disk_and_outside_centres():
    mask = _disk((100, 100), (50.0, 50.0), 30.0, (1.0, 1.0))
    assert object_radius(mask, (49.5, 49.5)) == pytest.approx(30.0, abs=0.75)
    assert object_radius(mask, (2.0, 2.0)) == 0.0
    assert object_radius(mask, (-5.0, 300.0)) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spacing": 0}, "spacing (mm) must be a positive number; got 0"),
        ({"size": (64,)}, "size must be a positive integer or (H, W) of such; got (64,)"),
        ({"crop": "heart"}, "crop must be 'lv' or 'image'; got 'heart'"),
        ({"percentiles": (99, 1)}, "percentiles must satisfy 0 <= low < high <= 100"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        preprocess(make_phantoms(1, size=64), **kwargs)
    assert message in str(info.value)


def test_crop_offset_moves_the_lv_within_the_crop_and_zero_changes_nothing():
    """``offset`` (``--crop-offset``): crops centred on the LV moved by up to offset x half."""
    slices = make_phantoms(12, size=160)
    plain, _ = preprocess(slices, size=64)
    zero, _ = preprocess(slices, size=64, offset=0.0, seed=5)
    assert np.array_equal(plain.images, zero.images) and np.array_equal(plain.centers, zero.centers)
    moved, _ = preprocess(slices, size=64, offset=1.0, seed=5)
    shift = np.abs(moved.centers - plain.centers)
    assert shift.max() > 8 and shift.max() <= 32 + 1  # half the crop, +1 for rounding
    for mask, (x, y) in zip(moved.masks, moved.centers):  # centres follow the moved masks
        row, col = ndimage.center_of_mass(mask)
        assert abs(col - x) < 1e-4 and abs(row - y) < 1e-4
    again, _ = preprocess(slices, size=64, offset=1.0, seed=5)
    assert np.array_equal(again.centers, moved.centers)  # seeded
    with pytest.raises(ValueError, match=r"^offset must be a number in \[0, 1\]; got 1.5$"):
        preprocess(slices, size=64, offset=1.5)


def test_crop_offset_is_a_bounded_train_option():
    from lvseg.config import TrainConfig

    assert TrainConfig(method="unet").crop_offset == 0.0
    with pytest.raises(ValueError, match="crop_offset"):
        TrainConfig(method="unet", crop_offset=2.0)
