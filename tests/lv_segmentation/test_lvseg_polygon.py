"""polygon_to_mask against hand-filled masks, matplotlib's point-in-polygon and the shoelace area."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from lvseg.data import polygon_to_mask


def test_rectangle_on_pixel_centres_fills_its_area_half_open():
    # corners on pixel centres: left/top edges inside, right/bottom edges outside
    mask = polygon_to_mask([(1, 2), (4, 2), (4, 4), (1, 4)], (6, 6))
    expected = np.zeros((6, 6), bool)
    expected[2:4, 1:4] = True
    np.testing.assert_array_equal(mask, expected)


def test_tiny_triangle_by_hand():
    # centres strictly inside x > 0.5, y > 0.5, x + y < 3.5: (1,1), (2,1), (1,2)
    mask = polygon_to_mask([(0.5, 0.5), (3.5, 0.5), (0.5, 3.5)], (4, 4))
    expected = np.zeros((4, 4), bool)
    expected[1, 1] = expected[1, 2] = expected[2, 1] = True
    np.testing.assert_array_equal(mask, expected)


def _random_star_polygon(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    n = int(rng.integers(3, 40))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(2, min(shape) / 2, n)
    center = rng.uniform(0, 1, 2) * np.array(shape[::-1])
    return center + np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


@pytest.mark.parametrize("seed", range(20))
def test_matches_matplotlib_point_in_polygon(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    points = _random_star_polygon(rng, shape)  # random reals: no pixel centre on an edge
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    centres = np.stack([cols.ravel(), rows.ravel()], axis=1)
    expected = MplPath(points).contains_points(centres).reshape(shape)
    np.testing.assert_array_equal(polygon_to_mask(points, shape), expected)


def test_pixel_count_approximates_polygon_area():
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    points = np.stack([50 + 30 * np.cos(angles), 47.3 + 30 * np.sin(angles)], axis=1)
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    assert abs(polygon_to_mask(points, (100, 100)).sum() / area - 1) < 0.01


def test_explicitly_closed_polygon_and_outside_vertices():
    square = [(1.5, 1.5), (5.5, 1.5), (5.5, 5.5), (1.5, 5.5)]
    np.testing.assert_array_equal(
        polygon_to_mask(square + [square[0]], (8, 8)), polygon_to_mask(square, (8, 8))
    )
    clipped = polygon_to_mask([(-10, -10), (3.5, -10), (3.5, 2.5), (-10, 2.5)], (5, 5))
    assert clipped.sum() == 4 * 3 and clipped[:3, :4].all()
    assert not polygon_to_mask([(20, 20), (30, 20), (25, 30)], (5, 5)).any()


@pytest.mark.parametrize(
    ("points", "shape", "message"),
    [
        ([(0, 0), (1, 1)], (4, 4), "at least 3 vertices; got 2"),
        ([(0, 0, 0)] * 3, (4, 4), "shape (P, 2)"),
        ([(0, 0), (1, np.nan), (2, 0)], (4, 4), "must be finite"),
        ([(0, 0), (1, 1), (2, 0)], (4, 0), "two positive integers; got (4, 0)"),
    ],
)
def test_invalid_input_messages(points, shape, message):
    with pytest.raises(ValueError) as info:
        polygon_to_mask(points, shape)
    assert message in str(info.value)
