"""Star pattern, warping, radial cost, smoothing, contours and masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from diffbypass_stardp import (
    contour_points,
    default_smoothing_width,
    mask_to_indices,
    polygon_mask,
    radial_difference,
    smooth_indices,
    star_points,
    warp,
)

from ._helpers import disc_mask

skimage_draw = pytest.importorskip("skimage.draw")


# ---------------------------------------------------------------- star pattern
def test_star_geometry_thesis_defaults():
    c = torch.tensor([[100.0, 80.5], [50.25, 60.0]], dtype=torch.float64)
    p = star_points(c)
    assert p.shape == (2, 25, 65, 2) and p.dtype == torch.float64
    dist = (p - c[:, None, None, :]).norm(dim=-1)
    torch.testing.assert_close(dist, torch.arange(1.0, 66.0, dtype=torch.float64).expand(2, 25, 65))
    direction = torch.atan2(p[0, :, -1, 1] - c[0, 1], p[0, :, -1, 0] - c[0, 0]) % (2 * math.pi)
    torch.testing.assert_close(direction, torch.arange(25, dtype=torch.float64) * 2 * math.pi / 25)


def test_rotating_by_one_line_shifts_the_line_index():
    c = torch.tensor([[30.0, 40.0]], dtype=torch.float64)
    base = star_points(c, n_lines=12, n_points=9, radius=20.0, angle=0.3)
    turned = star_points(c, n_lines=12, n_points=9, radius=20.0, angle=0.3 + 2 * math.pi / 12)
    torch.testing.assert_close(turned, torch.roll(base, -1, dims=1))


def test_angle_per_image():
    c = torch.zeros(3, 2, dtype=torch.float64)
    angles = torch.tensor([0.0, 0.5, -0.5], dtype=torch.float64)
    p = star_points(c, n_lines=5, n_points=3, radius=3.0, angle=angles)
    for b in range(3):
        torch.testing.assert_close(p[b], star_points(c[b:b + 1], n_lines=5, n_points=3,
                                                     radius=3.0, angle=float(angles[b]))[0])


def test_star_points_is_differentiable_in_centre_and_angle():
    c = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c, a: star_points(c, n_lines=4, n_points=3, radius=2.0, angle=a), (c, a))


# ---------------------------------------------------------------- warp
def test_nearest_reads_the_nearest_pixel_and_pads():
    maps = torch.arange(20.0).reshape(1, 4, 5)  # value 5 y + x
    pts = torch.tensor([[[[1.4, 2.6], [3.5, 0.49], [-3.0, 1.0], [2.0, 9.0]]]])
    torch.testing.assert_close(warp(maps, pts), torch.tensor([[[16.0, 4.0, 5.0, 17.0]]]))
    torch.testing.assert_close(warp(maps, pts, padding="zeros"),
                               torch.tensor([[[16.0, 4.0, 0.0, 0.0]]]))
    torch.testing.assert_close(warp(maps[:, None], pts), warp(maps, pts))


def test_bilinear_is_exact_on_a_linear_map_and_pads():
    h, w = 7, 9
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    maps = (2 * xx - 3 * yy + 1)[None]
    pts = torch.rand(1, 6, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    pts = pts * torch.tensor([w - 1, h - 1], dtype=torch.float64)
    g = warp(maps, pts, mode="bilinear")
    torch.testing.assert_close(g, 2 * pts[..., 0] - 3 * pts[..., 1] + 1)
    outside = torch.tensor([[[[-5.0, 3.0], [4.0, 50.0]]]], dtype=torch.float64)
    border = warp(maps, outside, mode="bilinear")
    expected = torch.tensor([[[1.0 - 9.0, 9.0 - 18.0]]], dtype=torch.float64)  # (0, 3), (4, 6)
    torch.testing.assert_close(border, expected)
    zeros = warp(maps, outside, mode="bilinear", padding="zeros")
    torch.testing.assert_close(zeros, torch.zeros(1, 1, 2, dtype=torch.float64))


def test_bilinear_gradcheck():
    gen = torch.Generator().manual_seed(1)
    maps = torch.rand(2, 6, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    pts = star_points(torch.tensor([[3.1, 2.7], [2.6, 3.3]], dtype=torch.float64),
                      n_lines=5, n_points=3, radius=2.3).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m, p: warp(m, p, mode="bilinear"), (maps, pts))
    assert torch.autograd.gradcheck(
        lambda m: warp(m, pts.detach(), mode="nearest"), (maps,))


# ---------------------------------------------------------------- cost
def test_radial_difference_values_and_types():
    g = np.array([[[1.0, 0.8, 0.1, 0.0]]], dtype=np.float32)
    np.testing.assert_allclose(radial_difference(g), [[[-0.2, -0.7, -0.1, 0.0]]], rtol=1e-6)
    t = radial_difference(torch.from_numpy(g))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), radial_difference(g))
    full = np.ones((1, 1, 4))
    np.testing.assert_array_equal(radial_difference(full), [[[0.0, 0.0, 0.0, -1.0]]])


# ---------------------------------------------------------------- smoothing
def test_default_width():
    assert [default_smoothing_width(n) for n in (3, 12, 16, 25, 50, 100)] == [1, 3, 5, 7, 13, 25]


def test_smoothing_is_a_circular_moving_average():
    rng = np.random.default_rng(0)
    v = rng.integers(0, 65, size=(4, 25))
    s = smooth_indices(v)
    assert s.dtype == np.float64
    expected = sum(np.roll(v, k, axis=1) for k in range(-3, 4)) / 7
    np.testing.assert_allclose(s, expected)
    np.testing.assert_allclose(smooth_indices(np.roll(v, 5, axis=1)), np.roll(s, 5, axis=1))
    np.testing.assert_allclose(s.mean(axis=1), v.mean(axis=1))
    t = smooth_indices(torch.from_numpy(v), 7)
    assert t.dtype == torch.get_default_dtype()
    np.testing.assert_allclose(t.numpy(), s, rtol=1e-6)
    np.testing.assert_array_equal(smooth_indices(v, 1), v.astype(float))
    np.testing.assert_allclose(smooth_indices(np.full((1, 25), 9.0), 25), 9.0)


# ---------------------------------------------------------------- contours and masks
def test_contour_points_integer_and_fractional():
    p = star_points(torch.tensor([[10.0, 10.0]], dtype=torch.float64), n_lines=6, n_points=5,
                    radius=5.0)
    v = torch.tensor([[0, 4, 2, 1, 3, 0]])
    torch.testing.assert_close(contour_points(v, p), p[0, torch.arange(6), v[0]][None])
    half = contour_points(v.double() + 0.5 * (v < 4), p)
    torch.testing.assert_close((half - 10).norm(dim=-1)[0], v[0].double() + 1 + 0.5 * (v[0] < 4))
    frac = torch.tensor([[0.3, 1.7, 2.2, 3.9, 0.6, 1.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: contour_points(f, p), (frac,))


def _segment_distance(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    ap = np.stack([px, py], -1)[:, None, :] - a[None]
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab**2).sum(-1), 1e-12), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)


def test_polygon_mask_agrees_with_skimage_up_to_boundary_pixels():
    rng = np.random.default_rng(2)
    shape = (70, 90)
    polys = []
    for n_lines in rng.integers(3, 30, size=12):
        c = torch.tensor([[rng.uniform(25, 65), rng.uniform(25, 45)]], dtype=torch.float64)
        p = star_points(c, n_lines=int(n_lines), n_points=30, radius=30.0)
        v = torch.from_numpy(rng.uniform(0, 29, size=(1, int(n_lines))))
        polys.append(contour_points(v, p)[0].numpy())
    polys.append(np.array([[2.0, 2.0], [8.0, 2.0], [8.0, 6.0], [2.0, 6.0]]))  # vertices on pixels
    for poly in polys:
        size = (np.int64(shape[0]), shape[1])  # NumPy integers are accepted as sizes
        mine = polygon_mask(torch.from_numpy(poly[None]), size)[0].numpy()
        rr, cc = skimage_draw.polygon(poly[:, 1], poly[:, 0], shape)
        ref = np.zeros(shape, dtype=bool)
        ref[rr, cc] = True
        differ = np.argwhere(mine ^ ref)
        if len(differ):
            d = _segment_distance(differ[:, 1].astype(float), differ[:, 0].astype(float), poly)
            assert d.max() <= 0.5, "only pixels on (or touching) the boundary may differ"
        assert (mine ^ ref).sum() <= 2 * len(poly) + (poly.max() - poly.min()) * 4


def test_disc_centred_on_the_star_gives_constant_indices():
    # 5-px steps, so that rounding a point to its pixel (< 0.71 px) cannot cross the boundary
    mask = disc_mask((150, 150), (70.3, 75.6), (32.5, 32.5))
    p = star_points(torch.tensor([[70.3, 75.6]]), n_lines=25, n_points=13, radius=65.0)
    v = mask_to_indices(torch.from_numpy(mask[None]), p)
    assert v.dtype == torch.int64
    torch.testing.assert_close(v, torch.full((1, 25), 5))  # point 5 at 30 px in, 6 at 35 px out


@pytest.mark.parametrize(("n_lines", "ellipse"), [(25, False), (100, False), (100, True)])
def test_mask_indices_mask_round_trip_within_one_pixel(n_lines, ellipse):
    rng = np.random.default_rng(3)
    shape = (150, 150)
    for _ in range(6):
        c = (75 + rng.uniform(-3, 3), 75 + rng.uniform(-3, 3))
        r = rng.uniform(12, 50)
        radii = (r, r * rng.uniform(0.5, 1.0)) if ellipse else (r, r)
        mask = disc_mask(shape, c, radii, rng.uniform(0, math.pi))
        p = star_points(torch.tensor([c], dtype=torch.float64), n_lines=n_lines)
        v = mask_to_indices(torch.from_numpy(mask[None]), p)
        # the boundary lies between the last point inside (v) and the first outside (v + 1)
        back = polygon_mask(contour_points((v + 0.5).clamp(max=64), p), shape)[0].numpy()
        square = np.ones((3, 3), dtype=bool)
        assert (ndimage.binary_erosion(mask, square) <= back).all()
        assert (back <= ndimage.binary_dilation(mask, square)).all()


def test_line_that_never_leaves_and_object_smaller_than_a_step():
    p = star_points(torch.tensor([[5.0, 5.0]]), n_lines=4, n_points=3, radius=3.0)
    full = torch.ones(1, 11, 11, dtype=torch.bool)
    torch.testing.assert_close(mask_to_indices(full, p), torch.full((1, 4), 2))
    dot = torch.zeros(1, 11, 11)
    dot[0, 5, 5] = 1
    torch.testing.assert_close(mask_to_indices(dot, p), torch.zeros(1, 4, dtype=torch.long))


@pytest.mark.parametrize("angle", [0.0, 0.3, torch.tensor(-0.2)])
def test_one_rotation_for_all_centres_is_the_batched_formula(angle):
    """A scalar angle reuses one cached pattern: the same numbers as one angle per centre, a
    fresh tensor each call (writing into it leaves the next call unchanged), and gradients to
    the centres."""
    c = (torch.rand(7, 2, generator=torch.Generator().manual_seed(0)) * 100).requires_grad_(True)
    per_centre = torch.full((7,), float(angle))
    expected = star_points(c, angle=per_centre, n_lines=25, n_points=65, radius=65.0)
    got = star_points(c, angle=angle, n_lines=25, n_points=65, radius=65.0)
    assert torch.equal(got, expected)
    got.detach().zero_()
    assert torch.equal(star_points(c, angle=angle), expected)
    star_points(c, angle=angle).sum().backward()
    assert torch.equal(c.grad, torch.full_like(c, 25 * 65))
