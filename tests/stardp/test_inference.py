"""segment_stars against the composition of the public functions it replaces, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass_stardp import (EDGE_OFFSET, StarDP, contour_points, segment_stars, star_mask,
                               star_points, warp)  # fmt: skip


def composed(maps, centers, dp, offset=EDGE_OFFSET, **star):
    points = star_points(centers.float(), **star)
    warped = warp(maps, points)
    indices = dp(warped)
    contours = contour_points(indices, points, offset=offset)
    masks = star_mask(contours, centers, tuple(maps.shape[-2:]))
    return points, warped, indices, contours, masks


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("star", [{}, {"n_lines": 12, "n_points": 20, "radius": 30.0}])
@pytest.mark.parametrize("offset", [None, 0.0, 0.3, 1.0])
def test_the_same_numbers_as_the_composition(batch, dtype, star, offset):
    """Every offset, the default (EDGE_OFFSET) included; 0.3 is not exact in float32."""
    g = torch.Generator().manual_seed(batch)
    dp = StarDP(output="float", delta=2 if star else 1)
    for k in range(10):
        maps = torch.randn(batch, 1, 96, 80, generator=g) * 10.0 ** (k % 3 - 1)
        if k % 2:  # a blob, so that the contours are not all noise
            yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(80.0), indexing="ij")
            maps = maps + 3.0 * (((xx - 40) ** 2 + (yy - 50) ** 2) < 20**2)
        # centres anywhere in the image, some near the border (points outside are clamped)
        centers = (torch.rand(batch, 2, generator=g, dtype=dtype) * torch.tensor([79.0, 95.0],
                   dtype=dtype))  # fmt: skip
        at = {} if offset is None else {"offset": offset}
        got = segment_stars(maps, centers, dp, **star, **at)
        for name, a, b in zip(got._fields, got, composed(maps, centers, dp, **star, **at)):
            assert a.dtype == b.dtype and torch.equal(a, b), (name, k)


def test_numpy_and_3d_maps():
    maps = np.random.default_rng(0).normal(size=(2, 64, 64)).astype(np.float32)
    centers = np.array([[30.0, 31.5], [20.25, 40.0]])
    dp = StarDP(output="float")
    got = segment_stars(maps, centers, dp, n_points=30, radius=30.0)
    want = composed(torch.from_numpy(maps), torch.from_numpy(centers), dp, n_points=30,
                    radius=30.0)  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"dp": StarDP()}, ValueError, r"dp must be StarDP\(output='float', cost='radial_difference'\)"),
    ({"dp": StarDP(output="float", cost="map")}, ValueError, "dp must be StarDP"),
    ({"dp": "dp"}, TypeError, "dp must be"),
    ({"maps": torch.zeros(2, 2, 8, 8)}, ValueError, r"maps must have shape .* got \(2, 2, 8, 8\)"),
    ({"centers": torch.zeros(3, 2)}, ValueError, r"centers must have shape \(B, 2\) = \(2, 2\)"),
    ({"centers": torch.tensor([[1.0, float("nan")], [1.0, 1.0]])}, ValueError, "finite"),
    ({"centers": [[1.0, 1.0], [1.0, 1.0]]}, TypeError, "got list"),
    ({"n_lines": 2}, ValueError, "n_lines must be an integer >= 3"),
    ({"radius": 0}, ValueError, "radius must be a positive number"),
])  # fmt: skip
def test_bad_arguments_are_named(kwargs, error, match):
    args = {"maps": torch.zeros(2, 1, 8, 8), "centers": torch.full((2, 2), 4.0),
            "dp": StarDP(output="float"), **kwargs}  # fmt: skip
    star = {k: args.pop(k) for k in ("n_lines", "radius") if k in args}
    with pytest.raises(error, match=match):
        segment_stars(args["maps"], args["centers"], args["dp"], **star)
