"""``star_mask`` (issue #9): the same masks as ``polygon_mask`` for star-shaped contours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass_stardp import (
    StarDP,
    contour_points,
    polygon_mask,
    star_mask,
    star_points,
    warp,
)

from ._helpers import disc_mask


def _contours(seed: int, batch: int, *, integer: bool):
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(batch, 2, generator=g, dtype=torch.float64) * 60 + 34
    angles = torch.rand(batch, generator=g, dtype=torch.float64) - 0.5
    if integer:  # pixel centres on the star's rays and vertices on pixel rows: many near-ties
        centers, angles = centers.round(), torch.zeros(batch, dtype=torch.float64)
    points = star_points(centers, n_lines=25, n_points=65, radius=65.0, angle=angles)
    indices = torch.rand(batch, 25, generator=g, dtype=torch.float64) * 64
    if integer:
        indices = indices.round()
    return contour_points(indices, points), centers


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("integer", [False, True])
def test_star_mask_equals_polygon_fill(seed, integer):
    contours, centers = _contours(seed, 8, integer=integer)
    expected = polygon_mask(contours, (128, 128))
    got = star_mask(contours, centers, (128, 128))
    assert got.dtype == torch.bool and got.shape == (8, 128, 128)
    assert torch.equal(got, expected)
    # the vertex order may run either way round; NumPy input gives the same masks
    assert torch.equal(star_mask(contours.flip(1), centers, (128, 128)), expected)
    assert torch.equal(star_mask(contours.numpy(), centers.numpy(), (128, 128)), expected)


def test_star_mask_of_a_dp_contour_on_a_disc():
    mask = disc_mask((128, 128), (60.3, 66.8), (21.0, 15.0), angle=0.4)
    centre = torch.tensor([[60.3, 66.8]])
    points = star_points(centre, image_shape=(128, 128))
    warped = torch.from_numpy(mask[None].astype(np.float32))
    indices = StarDP(output="float")(warp(warped, points))
    contour = contour_points(indices, points)
    filled = star_mask(contour, centre, (128, 128))
    assert torch.equal(filled, polygon_mask(contour, (128, 128)))
    assert (filled[0].numpy() != mask).mean() < 0.01


def test_star_mask_clipped_by_the_image_and_empty_batch():
    contours, centers = _contours(0, 4, integer=False)
    assert torch.equal(star_mask(contours, centers, (40, 70)), polygon_mask(contours, (40, 70)))
    assert star_mask(contours[:0], centers[:0], (5, 5)).shape == (0, 5, 5)


def test_star_mask_errors():
    contours, centers = _contours(0, 3, integer=False)
    shuffled = contours[:, torch.randperm(25, generator=torch.Generator().manual_seed(1))]
    with pytest.raises(
        ValueError,
        match=r"polygons must be star-shaped around centers: vertices in angular order around "
        r"the centre, consecutive ones less than pi apart, none at the centre \(as "
        r"contour_points gives them\); got polygon 0 that is not",
    ):
        star_mask(shuffled, centers, (128, 128))
    with pytest.raises(ValueError, match=r"got polygon 2 that is not"):
        star_mask(contours, torch.cat([centers[:2], contours[2:, 0]]), (128, 128))
    with pytest.raises(ValueError, match=r"got polygon 1 that is not"):  # centre outside
        star_mask(contours, centers + torch.tensor([[0.0, 0.0], [200.0, 0.0], [0.0, 0.0]]),
                  (128, 128))
    with pytest.raises(
        ValueError, match=r"centers must have shape \(B, 2\) = \(3, 2\) as \(x, y\); got \(3,\)"
    ):
        star_mask(contours, centers[:, 0], (128, 128))
    with pytest.raises(
        ValueError, match=r"polygons must have shape \(B, N, 2\) with N >= 3 vertices; got"
    ):
        star_mask(contours[:, :2], centers, (128, 128))
    with pytest.raises(ValueError, match=r"shape must be \(H, W\) with positive integers"):
        star_mask(contours, centers, (0, 5))
    with pytest.raises(ValueError, match=r"centers must be finite; got NaN or inf"):
        star_mask(contours, torch.full((3, 2), float("nan")), (8, 8))
    with pytest.raises(TypeError, match=r"polygons must be a torch.Tensor or numpy.ndarray"):
        star_mask([[0.0]], centers, (8, 8))
