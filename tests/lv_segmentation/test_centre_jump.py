"""The centre-jump check (issue #19): an ES star centre far from its neighbours' and from ED's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lvseg.volumes import CENTRE_JUMP_FACTOR, SliceResult, check_es_centre_jump

SPACING = (1.5, 1.25)  # (dy, dx) mm


def _jump(ed_c, es_c, ed_a, es_a, **kw) -> list[int]:
    """The slices :func:`check_es_centre_jump` names (frames 1 and 12)."""
    warnings = check_es_centre_jump(ed_c, es_c, ed_a, es_a, frames=(1, 12),
                                    spacing=kw.pop("spacing", SPACING), **kw)
    assert all(w.startswith("frame 12, slice ") for w in warnings)
    return [int(w.split(":")[0].rsplit(" ", 1)[1]) for w in warnings]


def test_a_jumped_es_centre_is_named_with_both_distances_and_the_radius() -> None:
    # by hand: slice 1 at ES sits 8 px right (x 8 * 1.25 = 10 mm) and 4 px down (y 4 * 1.5 =
    # 6 mm) of slices 0 and 2 and of its ED centre: hypot(10, 6) = 11.66 mm; its area 9 pi mm²,
    # a radius of 3 mm; 11.66 > 1 x 3 on both references
    es = [(10, 10), (18, 14), (10, 10)]
    area = 9 * math.pi
    warnings = check_es_centre_jump([(10, 10)] * 3, es, [100.0] * 3, [100.0, area, 100.0],
                                    spacing=SPACING, frames=(1, 12))
    assert warnings == [
        "frame 12, slice 1: the star centre at ES is 11.7 mm from the mean of its neighbours "
        "(slices 0 and 2) and 11.7 mm from its centre at ED, both more than 1 times its LV radius "
        "(3 mm); the star may be centred outside the LV"]


def test_both_references_must_disagree() -> None:
    area = [16 * math.pi] * 4  # radius 4 mm; spacing 1 mm
    ed = [(10, 10)] * 4
    # ES slice 2 off its neighbours (10 mm) but where it was at ED: the LV moved, no warning
    ed_moved = [(10, 10), (10, 10), (20, 10), (10, 10)]
    es = [(10, 10), (10, 10), (20, 10), (10, 10)]
    assert _jump(ed_moved, es, area, area, spacing=(1, 1)) == []
    # the whole ES stack shifted 10 mm from ED: off ED, but in line with its neighbours
    assert _jump(ed, [(20, 10)] * 4, area, area, spacing=(1, 1)) == []
    # off both: named
    assert _jump(ed, es, area, area, spacing=(1, 1)) == [2]


def test_the_neighbours_are_the_nearest_lv_slices_and_an_end_has_one() -> None:
    area = 16 * math.pi  # radius 4 mm
    ed = [(10, 10)] * 5
    # slice 1 has no LV at ES: slice 2's neighbours are slices 0 and 3 (mean (10, 10))
    es = [(10, 10), None, (20, 10), (10, 10), (10, 10)]
    es_a = [area, 0.0, area, area, area]
    got = check_es_centre_jump(ed, es, [area] * 5, es_a, spacing=(1, 1), frames=(1, 12))
    assert [w[:17] for w in got] == ["frame 12, slice 2"] and "(slices 0 and 3)" in got[0]
    # the apex end (slice 4) jumped: its one neighbour is slice 3
    es_end = [(10, 10)] * 4 + [(10, 22)]
    got = check_es_centre_jump(ed, es_end, [area] * 5, [area] * 5, spacing=(1, 1), frames=(1, 12))
    assert len(got) == 1 and got[0].startswith(
        "frame 12, slice 4: the star centre at ES is 12 mm from its neighbour (slice 3) and 12 mm")
    # an area of 0 means no LV, whatever the centre says; no LV at ED or no neighbour: unchecked
    assert _jump(ed, es_end, [area] * 4 + [0.0], [area] * 5, spacing=(1, 1)) == []
    assert _jump(ed[:1] + [None] * 4, es_end, [area] * 5, [area] * 5, spacing=(1, 1)) == []
    assert _jump(ed, [None] * 4 + [(10, 22)], [area] * 5, [0.0] * 4 + [area],
                 spacing=(1, 1)) == []


def test_the_factor_is_the_named_constant_and_only_beyond_it_warns() -> None:
    assert CENTRE_JUMP_FACTOR == 1.0
    area = [16 * math.pi] * 3  # radius 4 mm; slice 1 is 10 mm off both: 2.5 radii
    ed, es = [(10, 10)] * 3, [(10, 10), (20, 10), (10, 10)]
    assert _jump(ed, es, area, area, spacing=(1, 1), factor=2.49) == [1]
    assert _jump(ed, es, area, area, spacing=(1, 1), factor=2.51) == []


def test_bad_arguments_are_named() -> None:
    a = [1.0, 1.0]
    with pytest.raises(ValueError, match=r"one centre per slice, 2 like the areas; got 1 and 2"):
        check_es_centre_jump([(1, 1)], [(1, 1)] * 2, a, a, spacing=(1, 1), frames=(1, 2))
    with pytest.raises(ValueError, match=r"es_centres\[1\] must be None or a centre \(x, y\)"):
        check_es_centre_jump([(1, 1)] * 2, [(1, 1), (1, 2, 3)], a, a, spacing=(1, 1),
                             frames=(1, 2))
    with pytest.raises(ValueError, match=r"ed_centres\[0\] must be finite; got \(nan, 1\)"):
        check_es_centre_jump([(math.nan, 1), None], [None] * 2, a, a, spacing=(1, 1),
                             frames=(1, 2))
    expected = r"spacing must be the pixel size \(dy, dx\) in mm, two finite sizes > 0; got "
    with pytest.raises(ValueError, match=expected + r"\(0, 1\)"):
        check_es_centre_jump([None] * 2, [None] * 2, a, a, spacing=(0, 1), frames=(1, 2))
    with pytest.raises(ValueError, match=expected + r"\(1.0,\)"):
        check_es_centre_jump([None] * 2, [None] * 2, a, a, spacing=(1.0,), frames=(1, 2))
    with pytest.raises(ValueError, match="factor must be a finite number > 0; got -1"):
        check_es_centre_jump([None] * 2, [None] * 2, a, a, spacing=(1, 1), frames=(1, 2),
                             factor=-1)
    with pytest.raises(ValueError, match=r"es_areas must be finite areas >= 0 mm²"):
        check_es_centre_jump([None] * 2, [None] * 2, a, [1.0, -1.0], spacing=(1, 1),
                             frames=(1, 2))


def _reference(ed_c, es_c, ed_a, es_a, dy, dx, k) -> list[int]:
    """The rule with plain lists and loops (mm = pixels times (dx, dy))."""
    lv = [z for z in range(len(es_c)) if es_a[z] > 0 and es_c[z] is not None]
    out = []
    for i, z in enumerate(lv):
        if ed_a[z] <= 0 or ed_c[z] is None:
            continue
        nb = ([lv[i - 1]] if i > 0 else []) + ([lv[i + 1]] if i + 1 < len(lv) else [])
        if not nb:
            continue
        mx = sum(es_c[n][0] for n in nb) / len(nb)
        my = sum(es_c[n][1] for n in nb) / len(nb)
        r = math.sqrt(es_a[z] / math.pi)
        d_nb = math.hypot((es_c[z][0] - mx) * dx, (es_c[z][1] - my) * dy)
        d_ed = math.hypot((es_c[z][0] - ed_c[z][0]) * dx, (es_c[z][1] - ed_c[z][1]) * dy)
        if d_nb > k * r and d_ed > k * r:
            out.append(z)
    return out


def test_random_stacks_agree_with_a_plain_reference() -> None:
    rng = np.random.default_rng(3)
    warned = 0
    for _ in range(300):
        n = int(rng.integers(1, 10))
        ed_a = [float(v) * float(rng.random() > 0.2) for v in rng.uniform(20, 400, n)]
        es_a = [float(v) * float(rng.random() > 0.2) for v in rng.uniform(20, 300, n)]
        ed_c = [None if rng.random() < 0.1 else tuple(rng.uniform(20, 30, 2)) for _ in range(n)]
        es_c = [None if rng.random() < 0.1 else tuple(rng.uniform(20, 30, 2)) for _ in range(n)]
        expected = _reference(ed_c, es_c, ed_a, es_a, 1.5, 1.25, CENTRE_JUMP_FACTOR)
        assert _jump(ed_c, es_c, ed_a, es_a) == expected
        warned += bool(expected)
    assert 20 < warned < 280  # both outcomes were exercised


def _disc(cx: float, cy: float, r: float, size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_segment_volume_checks_the_es_centres_and_keeps_the_masks(segment_ed_es) -> None:
    # ED: discs around (20, 20) tapering to the apex; ES: the same centres but slice 3, whose
    # star sits 10 px to the right (its contour drawn around the wrong point), radius 3 px
    ed_r, es_r = [8, 8, 7, 6, 4], [6, 6, 5, 3, 2]
    es_x = [20, 20, 20, 30, 20]
    results = ([SliceResult(_disc(20, 20, r), True, (20.0, 20.0)) for r in ed_r]
               + [SliceResult(_disc(x, 20, r), True, (float(x), 20.0)) for x, r in zip(es_x, es_r)])
    plain, checked = segment_ed_es(results, (10.0, 1.0, 1.0))  # also: the masks are kept
    jumps = [w for w in checked.warnings if "star centre at ES" in w]
    assert not any("star centre at ES" in w for w in plain.warnings)
    # slice 3 is 10 mm from slices 2 and 4 (both at x 20) and from its ED centre; its disc of
    # radius 3 px has 29 pixels (radius sqrt(29 / pi) = 3.04 mm)
    assert int(_disc(30, 20, 3).sum()) == 29
    assert jumps == [
        "frame 12, slice 3: the star centre at ES is 10 mm from the mean of its neighbours "
        "(slices 2 and 4) and 10 mm from its centre at ED, both more than 1 times its LV radius "
        "(3.04 mm); the star may be centred outside the LV"]
