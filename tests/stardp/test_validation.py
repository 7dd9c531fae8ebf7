"""Bad input: errors name the argument, the expectation and what was received; documented
conversions (dtype, contiguity, device) give the same results as clean input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass_stardp import (
    SoftMin,
    contour_points,
    dp_solve,
    dp_torch,
    mask_to_indices,
    polygon_mask,
    smooth_indices,
    soft_dp,
    star_points,
    warp,
)

GOOD = np.random.default_rng(0).normal(size=(3, 25, 65))


@pytest.mark.parametrize("solve", [dp_solve, lambda c, d=1: soft_dp(c, d)], ids=["dp", "soft"])
@pytest.mark.parametrize(
    ("cost", "delta", "error", "message"),
    [
        (np.zeros((25, 65)), 1, ValueError, r"cost must have shape \(B, N, M\); got \(25, 65\)"),
        (np.zeros((1, 2, 65)), 1, ValueError,
         r"cost must have N >= 3 lines \(dimension 1 of \(B, N, M\)\); got N=2"),
        (np.zeros((1, 25, 1)), 1, ValueError,
         r"cost must have M >= 2 points per line \(dimension 2 of \(B, N, M\)\); got M=1"),
        (GOOD, -1, ValueError, r"delta must be an integer >= 0; got -1"),
        (GOOD, 1.0, ValueError, r"delta must be an integer >= 0; got 1.0"),
        (GOOD, True, ValueError, r"delta must be an integer >= 0; got True"),
        ([[[0.0]]], 1, TypeError, r"cost must be a torch.Tensor or numpy.ndarray; got list"),
        (GOOD.astype(np.complex64), 1, ValueError,
         r"cost must hold real numbers; got dtype (torch\.)?complex64"),
    ],
)
def test_cost_and_delta_errors(solve, cost, delta, error, message):
    with pytest.raises(error, match=message):
        solve(cost, delta)


def test_nonfinite_cost_names_the_batch_element():
    for bad in (np.nan, np.inf, -np.inf):
        cost = GOOD.copy()
        cost[1, 3, 4] = bad
        with pytest.raises(
            ValueError,
            match=r"cost must be finite; got NaN or inf in batch element "
            r"1",
        ):
            dp_solve(cost)
        with pytest.raises(ValueError, match=r"cost must be finite; got NaN or inf"):
            soft_dp(torch.from_numpy(cost))


def test_noncontiguous_input_is_copied():
    ref = dp_solve(GOOD)
    transposed = np.ascontiguousarray(GOOD.transpose(0, 2, 1)).transpose(0, 2, 1)
    assert not transposed.flags.c_contiguous
    np.testing.assert_array_equal(dp_solve(transposed), ref)
    strided = np.repeat(GOOD, 2, axis=2)[:, :, ::2]
    np.testing.assert_array_equal(dp_solve(strided), ref)
    t = torch.from_numpy(np.ascontiguousarray(GOOD.transpose(0, 2, 1))).transpose(1, 2)
    assert not t.is_contiguous()
    np.testing.assert_array_equal(dp_solve(t).numpy(), ref)


def test_half_precision_and_integers_are_converted():
    half = np.round(GOOD * 8).astype(np.float16)  # exactly representable in float16
    ref = dp_solve(half.astype(np.float32))
    np.testing.assert_array_equal(dp_solve(half), ref)
    np.testing.assert_array_equal(dp_solve(torch.from_numpy(half)).numpy(), ref)
    np.testing.assert_array_equal(dp_solve(torch.from_numpy(half).bfloat16().float()).numpy(),
                                  dp_solve(torch.from_numpy(half).bfloat16()).numpy())
    ints = np.round(GOOD * 8).astype(np.int32)
    np.testing.assert_array_equal(dp_solve(ints), dp_solve(ints.astype(np.float64)))


def test_tensor_requiring_grad_is_detached():
    c = torch.from_numpy(GOOD).requires_grad_(True)
    np.testing.assert_array_equal(dp_solve(c).numpy(), dp_solve(GOOD))


def test_torch_reference_errors():
    with pytest.raises(TypeError, match=r"cost must be a torch.Tensor; got ndarray"):
        dp_torch(GOOD)
    with pytest.raises(ValueError, match=r"cost must be a floating tensor; got dtype torch.int64"):
        dp_torch(torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(
        TypeError,
        match=r"semiring must be a Semiring \(HardMin, SoftMin\); got "
        r"str",
    ):
        dp_torch(torch.zeros(1, 3, 2), 1, "min")
    for tau in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"temperature must be a (finite )?positive number; got"):
            SoftMin(tau)


def test_geometry_errors():
    with pytest.raises(
        ValueError,
        match=r"centers must have shape \(B, 2\) as \(x, y\); got "
        r"\(2,\)",
    ):
        star_points(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"n_lines must be an integer >= 3; got 2"):
        star_points(torch.zeros(1, 2), n_lines=2)
    with pytest.raises(ValueError, match=r"n_points must be an integer >= 2; got 1"):
        star_points(torch.zeros(1, 2), n_points=1)
    with pytest.raises(ValueError, match=r"radius must be a positive number; got 0"):
        star_points(torch.zeros(1, 2), radius=0)
    with pytest.raises(
        ValueError,
        match=r"angle must be a scalar or have shape \(B,\) = \(1,\); got "
        r"\(2,\)",
    ):
        star_points(torch.zeros(1, 2), angle=torch.zeros(2))
    with pytest.raises(ValueError, match=r"centers must be finite; got NaN or inf"):
        star_points(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(
        ValueError,
        match=r"centers must lie inside the image \(0 <= x <= 99, 0 <= y <= 49\); "
              r"got centre 1 at \(x=10, y=50.5\)",
    ):
        star_points(torch.tensor([[3.0, 4.0], [10.0, 50.5]]), image_shape=(50, 100))
    p = star_points(torch.tensor([[5.0, 5.0]]), n_lines=4, n_points=3, radius=3.0)
    with pytest.raises(
        ValueError,
        match=r"maps must have shape \(B, 1, H, W\) or \(B, H, W\); got \(1, 2, 8, 8\) with 2 "
        r"channels",
    ):
        warp(torch.zeros(1, 2, 8, 8), p)
    with pytest.raises(ValueError, match=r"mode must be one of 'nearest', 'bilinear'; got 'cubic'"):
        warp(torch.zeros(1, 8, 8), p, mode="cubic")
    with pytest.raises(
        ValueError,
        match=r"padding must be one of 'border', 'zeros'; got "
        r"'reflect'",
    ):
        warp(torch.zeros(1, 8, 8), p, padding="reflect")
    with pytest.raises(ValueError, match=r"points must have the batch size of maps \(2\); got 1"):
        warp(torch.zeros(2, 8, 8), p)
    with pytest.raises(
        ValueError,
        match=r"indices must lie in \[0, M - 1\] = \[0, 2\]; got values in \[0, "
        r"3\]",
    ):
        contour_points(torch.tensor([[0, 1, 2, 3]]), p)
    with pytest.raises(
        ValueError,
        match=r"indices must have shape \(B, N\) = \(1, 4\); got \(1, "
        r"3\)",
    ):
        contour_points(torch.tensor([[0, 1, 2]]), p)
    with pytest.raises(
        ValueError,
        match=r"shape must be \(H, W\) with positive integers; got \(0, "
        r"5\)",
    ):
        polygon_mask(torch.zeros(1, 3, 2), (0, 5))
    with pytest.raises(
        ValueError,
        match=r"polygons must have shape \(B, N, 2\) with N >= 3 vertices; got \(1, 2, "
        r"2\)",
    ):
        polygon_mask(torch.zeros(1, 2, 2), (5, 5))
    with pytest.raises(
        ValueError,
        match=r"width must be an odd integer between 1 and N=25 \(a centred window\); got "
        r"4",
    ):
        smooth_indices(np.zeros((1, 25)), 4)
    with pytest.raises(ValueError, match=r"indices must have shape \(B, N\); got \(25,\)"):
        smooth_indices(np.zeros(25))


def test_mask_to_indices_requires_the_centre_inside_the_object_and_image():
    mask = torch.zeros(1, 20, 20, dtype=torch.bool)
    mask[0, 5:15, 5:15] = True
    outside_object = star_points(torch.tensor([[2.0, 3.0]]), n_lines=6, n_points=4, radius=4.0)
    with pytest.raises(
        ValueError,
        match=r"the star centre must lie inside the object; got centre 0 at \(x=2, y=3\) "
              r"on a background pixel of masks",
    ):
        mask_to_indices(mask, outside_object)
    outside_image = star_points(torch.tensor([[25.0, 3.0]]), n_lines=6, n_points=4, radius=4.0)
    with pytest.raises(
        ValueError,
        match=r"the star centre must lie inside the image \(0 <= x <= 19, 0 <= y <= 19\); got "
        r"centre 0 at \(x=25, y=3\)",
    ):
        mask_to_indices(mask, outside_image)
