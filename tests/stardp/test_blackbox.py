"""StarDP, the black box: it finds a disc's boundary; its options do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass_stardp import (
    StarDP,
    dp_solve,
    mask_to_indices,
    radial_difference,
    smooth_indices,
    star_points,
    warp,
)

from ._helpers import disc_mask


def disc_problem(radii, centres, shape=(160, 160), noise=0.0, seed=0, mode="nearest"):
    """Object-probability maps of discs, the star around the true centre, warped maps and truth."""
    rng = np.random.default_rng(seed)
    masks = np.stack([disc_mask(shape, c, (r, r)) for r, c in zip(radii, centres)])
    maps = masks.astype(np.float32) + noise * rng.standard_normal(masks.shape).astype(np.float32)
    p = star_points(torch.tensor(centres, dtype=torch.float32))
    g = warp(torch.from_numpy(maps), p, mode=mode)
    truth = mask_to_indices(torch.from_numpy(masks), p)
    return g, truth


def test_finds_the_disc_boundary():
    radii = [12.0, 25.5, 40.2, 58.0]
    centres = [(80.0, 80.0), (75.3, 81.7), (79.5, 78.25), (80.0, 80.5)]
    g, truth = disc_problem(radii, centres)
    raw = StarDP(smoothing=0)(g)
    torch.testing.assert_close(raw, truth)  # DP on a perfect map = the ground-truth indices
    smooth = StarDP()(g)
    assert smooth.dtype == torch.int64 and smooth.shape == (4, 25)
    assert (smooth - truth).abs().max() <= 1
    # the contour radius (index + 1 px) is within a pixel of the disc radius
    assert ((smooth.double() + 1.0) - torch.tensor(radii)[:, None]).abs().max() <= 1.5


def test_finds_a_noisy_disc_from_an_off_centre_star():
    radii = [30.0, 45.0]
    # discs at (80, 80), stars 3.6 px off centre: with delta = 1 the boundary index may change by
    # at most one point per line (about 2*pi/25 * offset), so the offset must stay small
    centres = [(77.0, 82.0), (82.5, 78.0)]
    rng = np.random.default_rng(1)
    masks = np.stack([disc_mask((160, 160), (80.0, 80.0), (r, r)) for r in radii])
    maps = masks + 0.2 * rng.standard_normal(masks.shape)
    p = star_points(torch.tensor(centres))
    g = warp(torch.from_numpy(maps).float(), p, mode="bilinear")
    truth = mask_to_indices(torch.from_numpy(masks), p)
    got = StarDP()(g)
    assert (got - truth).abs().float().mean() <= 0.5
    assert (got - truth).abs().max() <= 1


def test_outputs_and_options():
    rng = np.random.default_rng(2)
    g = rng.random((3, 25, 65)).astype(np.float32)
    raw = dp_solve(radial_difference(g), 1)
    np.testing.assert_array_equal(StarDP(smoothing=0)(g), raw)
    np.testing.assert_array_equal(StarDP(smoothing=1)(g), raw)
    smooth = StarDP(output="float")(g)
    assert smooth.dtype == np.float32
    np.testing.assert_allclose(smooth, smooth_indices(raw), rtol=1e-6)
    np.testing.assert_array_equal(StarDP()(g), np.round(smooth_indices(raw)).astype(np.int64))
    np.testing.assert_allclose(StarDP(smoothing=5, output="float")(g), smooth_indices(raw, 5),
                               rtol=1e-6)
    np.testing.assert_array_equal(StarDP(delta=2, cost="map", smoothing=0)(g), dp_solve(g, 2))


def test_torch_and_numpy_give_the_same_result():
    rng = np.random.default_rng(3)
    g = rng.random((5, 25, 65))
    for kwargs in ({}, {"output": "float"}, {"delta": 2, "smoothing": 3}):
        box = StarDP(**kwargs)
        a = box(g)
        b = box(torch.from_numpy(g))
        assert isinstance(b, torch.Tensor) and b.dtype == (
            torch.int64 if "output" not in kwargs else torch.float64)
        np.testing.assert_array_equal(b.numpy(), a)


def test_repr_and_pickle():
    import pickle

    box = StarDP(delta=2, smoothing=5, cost="map", output="float")
    assert repr(box) == "StarDP(delta=2, smoothing=5, cost='map', output='float')"
    again = pickle.loads(pickle.dumps(box))
    g = np.random.default_rng(0).random((2, 25, 65))
    np.testing.assert_array_equal(again(g), box(g))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delta": -1}, r"delta must be an integer >= 0; got -1"),
        ({"delta": 1.5}, r"delta must be an integer >= 0; got 1.5"),
        ({"smoothing": 4},
         r"smoothing must be None, 0/1 \(off\) or an odd window width >= 3; got 4"),
        ({"smoothing": -1}, r"smoothing must be an integer >= 0; got -1"),
        ({"cost": "edges"}, r"cost must be one of 'radial_difference', 'map'; got 'edges'"),
        ({"output": "int"}, r"output must be one of 'indices', 'float'; got 'int'"),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StarDP(**kwargs)


def test_call_validation():
    with pytest.raises(ValueError, match=r"warped must have shape \(B, N, M\); got \(25, 65\)"):
        StarDP()(np.zeros((25, 65)))
    with pytest.raises(
        ValueError,
        match=r"smoothing must not exceed the number of lines N=5; got "
        r"7",
    ):
        StarDP(smoothing=7)(np.zeros((1, 5, 65)))
    with pytest.raises(
        TypeError,
        match=r"warped must be a torch.Tensor or numpy.ndarray; got "
        r"list",
    ):
        StarDP()([[[0.0]]])
