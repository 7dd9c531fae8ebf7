"""Where the contour is drawn: ``offset`` point steps beyond the DP's indices (``EDGE_OFFSET``).

The DP, like ``mask_to_indices``, picks the last point inside the object on every line; the
object's edge lies half a point step further out on average. The references here are plain
NumPy: the true masks of discs and ellipses, and the radius of star point ``i`` on a line,
``(i + 1) R / M``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffbypass_stardp import (EDGE_OFFSET, StarDP, contour_points, mask_to_indices,
                               segment_stars, star_points)  # fmt: skip

CENTRE = (45.3, 50.6)


def true_mask(kind: str, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    """A disc of radius 20 or an ellipse of semi-axes 28 and 16 turned by 0.6 rad (NumPy)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    dx, dy = xx - CENTRE[0], yy - CENTRE[1]
    if kind == "disc":
        return dx**2 + dy**2 <= 20.0**2
    u = dx * math.cos(0.6) + dy * math.sin(0.6)
    v = -dx * math.sin(0.6) + dy * math.cos(0.6)
    return (u / 28.0) ** 2 + (v / 16.0) ** 2 <= 1.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("kind", ["disc", "ellipse"])
@pytest.mark.parametrize("n_lines", [25, 48])
def test_the_edge_fills_the_object_without_the_inward_bias(kind, n_lines):
    truth = true_mask(kind)
    maps = torch.from_numpy(2.0 * truth - 1.0)[None].float()  # a perfect map
    centre = torch.tensor([CENTRE])
    dp = StarDP(output="float", delta=65, smoothing=1)  # no constraint: the exact indices
    star = {"n_lines": n_lines, "n_points": 65, "radius": 65.0}  # one pixel per point step
    at = {o: segment_stars(maps, centre, dp, offset=o, **star) for o in (0.0, EDGE_OFFSET)}
    # the DP's indices are mask_to_indices' (the last point inside), whatever the offset
    expected = mask_to_indices(torch.from_numpy(truth)[None], star_points(centre, **star))
    for out in at.values():
        assert torch.equal(out.indices, expected.float())
        # each vertex at radius (index + 1 + offset) R / M from the centre (R / M = 1 here)
    for o, out in at.items():
        radius = np.hypot(*(out.contours[0].numpy().astype(np.float64) - CENTRE).T)
        np.testing.assert_allclose(radius, out.indices[0].numpy() + 1.0 + o, atol=1e-4)
    d0, d_edge = (dice(at[o].masks[0].numpy(), truth) for o in (0.0, EDGE_OFFSET))
    area0, area_edge = (at[o].masks[0].numpy().sum() / truth.sum() for o in (0.0, EDGE_OFFSET))
    assert d_edge > d0 + 0.01, (d0, d_edge)
    assert area0 < 0.96  # through the last inside points: clearly too small
    assert abs(area_edge - 1.0) < 0.03, area_edge


def test_the_edge_with_the_default_dp():
    """The default, smoothed DP on a disc (the docstring example): the edge is closer."""
    truth = true_mask("disc", (64, 72))
    maps = torch.from_numpy(truth.astype(np.float32))[None]
    got = {o: segment_stars(maps, torch.tensor([CENTRE]), StarDP(output="float"), offset=o,
                            radius=40.0, n_points=40).masks[0].numpy()
           for o in (0.0, EDGE_OFFSET)}  # fmt: skip
    assert dice(got[EDGE_OFFSET], truth) > dice(got[0.0], truth) + 0.01
    assert abs(got[EDGE_OFFSET].sum() / truth.sum() - 1.0) < 0.03


def test_segment_stars_returns_the_dp_indices_unshifted():
    maps = torch.from_numpy(true_mask("ellipse").astype(np.float32))[None]
    dp = StarDP(output="float")
    out = {o: segment_stars(maps, torch.tensor([CENTRE]), dp, offset=o) for o in (0.0, 0.7)}
    assert torch.equal(out[0.0].indices, out[0.7].indices)
    assert not torch.equal(out[0.0].contours, out[0.7].contours)
    assert torch.equal(out[0.0].contours, segment_stars(
        maps, torch.tensor([CENTRE]), dp, offset=0).contours)  # an int 0 is 0.0


def test_the_offset_moves_along_the_line_and_stops_at_its_last_point():
    m, r = 5, 5.0  # point i at radius i + 1
    points = star_points(torch.tensor([[0.0, 0.0]]), n_lines=4, n_points=m, radius=r)
    indices = torch.tensor([[0.0, 2.25, 3.5, 4.0]])
    for offset, radii in [(0.0, [1.0, 3.25, 4.5, 5.0]), (0.5, [1.5, 3.75, 5.0, 5.0]),
                          (1.0, [2.0, 4.25, 5.0, 5.0])]:  # fmt: skip
        got = contour_points(indices, points, offset=offset)[0].double().norm(dim=-1)
        np.testing.assert_allclose(got.numpy(), radii, atol=1e-6)
    # integer indices too; M - 1 stays the last point, exactly
    ints = torch.tensor([[0, 4, 4, 1]])
    got = contour_points(ints, points, offset=EDGE_OFFSET)
    assert got.dtype == points.dtype
    assert torch.equal(got[0, 1:3], points[0, 1:3, m - 1])
    np.testing.assert_allclose(got[0].double().norm(dim=-1).numpy(), [1.5, 5.0, 5.0, 2.5],
                               atol=1e-6)  # fmt: skip


def test_segment_stars_clamps_at_the_last_point():
    """An object larger than the star: every index is M - 1 and the contour its last points."""
    maps = torch.ones(1, 1, 64, 64)
    out = segment_stars(maps, torch.tensor([[32.0, 32.0]]), StarDP(output="float"),
                        n_lines=12, n_points=10, radius=20.0, offset=1.0)  # fmt: skip
    assert torch.equal(out.indices, torch.full((1, 12), 9.0))
    assert torch.equal(out.contours, out.points[:, :, -1])


def test_the_offset_keeps_the_gradient_of_the_indices():
    points = star_points(torch.tensor([[0.0, 0.0]], dtype=torch.float64), n_lines=4, n_points=8,
                         radius=8.0)  # fmt: skip
    v = torch.tensor([[1.2, 2.7, 3.4, 5.9]], dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x: contour_points(x, points, offset=EDGE_OFFSET), (v,))


@pytest.mark.parametrize("offset, got", [(-0.5, "-0.5"), (1.5, "1.5"), (float("nan"), "nan"),
                                         (float("inf"), "inf"), ("0.5", "'0.5'"),
                                         (True, "True"), (None, "None")])  # fmt: skip
def test_bad_offsets_are_named(offset, got):
    points = star_points(torch.tensor([[8.0, 8.0]]), n_lines=4, n_points=5, radius=5.0)
    message = rf"offset must be a number in \[0.0, 1.0\]; got {got}"
    with pytest.raises(ValueError, match=message):
        contour_points(torch.zeros(1, 4), points, offset=offset)
    with pytest.raises(ValueError, match=message):
        segment_stars(torch.zeros(1, 16, 16), torch.tensor([[8.0, 8.0]]),
                      StarDP(output="float"), offset=offset)  # fmt: skip
