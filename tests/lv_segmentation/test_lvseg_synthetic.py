"""Synthetic phantoms: deterministic per seed, different across seeds, plausible, fast."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import ndimage

from lvseg.data import load_dataset, make_phantoms


def test_same_seed_same_images_bit_for_bit():
    a, b = make_phantoms(10, size=64, seed=7), make_phantoms(10, size=64, seed=7)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask)
        assert (x.patient_id, x.source, x.extras) == (y.patient_id, y.source, y.extras)


def test_different_seeds_differ():
    a, b = make_phantoms(4, size=64, seed=1), make_phantoms(4, size=64, seed=2)
    for x, y in zip(a, b):
        assert not np.array_equal(x.image, y.image) and not np.array_equal(x.mask, y.mask)


def test_image_i_does_not_depend_on_n():
    short, long = make_phantoms(5, size=64, seed=3), make_phantoms(13, size=64, seed=3)
    for x, y in zip(short, long):
        assert np.array_equal(x.image, y.image)


def test_patients_group_slices_from_base_to_apex():
    slices = make_phantoms(20, size=96, seed=0, slices_per_patient=8)
    assert [s.patient_id for s in slices] == (
        ["synth0-0000"] * 8 + ["synth0-0001"] * 8 + ["synth0-0002"] * 4
    )
    areas = [s.mask.sum() for s in slices[:8]]
    assert areas[0] > areas[-1]  # the LV shrinks towards the apex
    assert [s.extras["position"] for s in slices[:8]] == pytest.approx(np.linspace(0, 1, 8))


def test_phantoms_look_like_short_axis_slices():
    for s in make_phantoms(16, size=(96, 112), seed=5, spacing=1.2):
        assert s.shape == (96, 112) and s.image.dtype == np.float32 and s.spacing == (1.2, 1.2)
        assert s.mask.any() and ndimage.label(s.mask)[1] == 1
        x, y = s.extras["center"]
        assert s.mask[round(y), round(x)]  # star-shaped around its centre
        ring = ndimage.binary_dilation(s.mask, iterations=3) & ~ndimage.binary_dilation(s.mask)
        assert s.image[s.mask].mean() > s.image[ring].mean() + 0.3  # bright pool, dark muscle
        rows, cols = np.nonzero(s.mask)
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < 95 and cols.max() < 111


def test_noise_and_bias_can_be_switched_off():
    clean = make_phantoms(1, size=64, seed=0, noise=0.0, bias=0.0)[0]
    noisy = make_phantoms(1, size=64, seed=0)[0]
    assert np.array_equal(clean.mask, noisy.mask)
    inside = ndimage.binary_erosion(clean.mask, iterations=3)  # away from the blurred edge
    assert clean.image[inside].std() < 1e-3 < 0.02 < noisy.image[inside].std()


def test_fast_enough():
    start = time.perf_counter()
    make_phantoms(300, size=128, seed=0)
    assert time.perf_counter() - start < 6.0  # about 0.7 s on one core


def test_load_dataset_synthetic():
    slices, report = load_dataset("synthetic", n=6, size=64, seed=2)
    assert len(slices) == report.loaded == 6
    with pytest.raises(ValueError) as info:
        load_dataset("synthetic", "some/dir")
    assert "'synthetic' is generated and takes no data_dir" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be an integer >= 1; got 0"),
        ({"n": 2, "size": 16}, "size must be an integer >= 32"),
        ({"n": 2, "seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"n": 2, "slices_per_patient": 0}, "slices_per_patient must be a positive integer"),
        ({"n": 2, "spacing": 0.0}, "spacing must be a positive number (mm); got 0.0"),
        ({"n": 2, "noise": -0.1}, "noise must be a non-negative number; got -0.1"),
        ({"n": 2, "bias": float("nan")}, "bias must be a non-negative number; got nan"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        make_phantoms(**kwargs)
    assert message in str(info.value)
