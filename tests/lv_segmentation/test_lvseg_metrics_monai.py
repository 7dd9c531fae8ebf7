"""lvseg's Dice, HD, HD95 and ASSD against MONAI, the field's standard implementation.

MONAI computes in float32, so values agree to float32 rounding: relative 1e-6 for Dice, HD and
ASSD (one rounding of a float64 distance, or a float32 mean), 1e-5 for HD95 (MONAI's
``torch.quantile`` places the 95th percentile in float32); fed our own distances rounded to
float32, MONAI's percentile reproduces its HD95 exactly, so the HD95 gap is that rounding and not
a definition. Empty masks follow documented conventions that differ from MONAI's
(``lvseg.surface`` module docstring); the last tests assert the relation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
)
from scipy import ndimage

from lvseg.metrics import (
    dice,
    evaluate_masks,
    star_square,
)
from lvseg.surface import (
    assd,
    hausdorff_distance,
    hd95,
    surface_distances,
)

RTOL = 1e-6  # MONAI's float32 results
RTOL_HD95 = 1e-5  # plus MONAI's float32 percentile position


def _monai(pred: np.ndarray, true: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    """MONAI's metrics of one binary 2-D pair (one batch item, one foreground channel)."""
    p = torch.as_tensor(pred[None, None], dtype=torch.float32)
    t = torch.as_tensor(true[None, None], dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns on empty masks; the values are asserted
        return {
            "dice": compute_dice(p, t, include_background=True, ignore_empty=False).item(),
            "dice_ignore_empty": compute_dice(p, t, include_background=True).item(),
            "hd": compute_hausdorff_distance(p, t, include_background=True, spacing=spacing).item(),
            "hd95": compute_hausdorff_distance(
                p, t, include_background=True, spacing=spacing, percentile=95
            ).item(),
            "assd": compute_average_surface_distance(
                p, t, include_background=True, symmetric=True, spacing=spacing
            ).item(),
        }


def _ours(pred: np.ndarray, true: np.ndarray, spacing: tuple[float, float]) -> dict[str, float]:
    return {
        "dice": dice(pred, true),
        "hd": hausdorff_distance(pred, true, spacing),
        "hd95": hd95(pred, true, spacing),
        "assd": assd(pred, true, spacing),
    }


def _assert_agree(pred: np.ndarray, true: np.ndarray, spacing: tuple[float, float]) -> None:
    ours, ref = _ours(pred, true, spacing), _monai(pred, true, spacing)
    for key in ("dice", "hd", "assd"):
        assert ours[key] == pytest.approx(ref[key], rel=RTOL, abs=1e-7), key
    assert ours["hd95"] == pytest.approx(ref["hd95"], rel=RTOL_HD95), "hd95"
    # the HD95 gap is only float32: MONAI's percentile of our distances rounded to float32
    a, b = (torch.as_tensor(d, dtype=torch.float32) for d in surface_distances(pred, true, spacing))
    f32 = max(torch.quantile(a, 0.95).item(), torch.quantile(b, 0.95).item())
    assert f32 == pytest.approx(ref["hd95"], rel=RTOL, abs=1e-7)


@pytest.mark.parametrize("seed", range(40))
def test_random_masks_agree_with_monai(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(3, 48, 2))
    if seed % 2:  # speckle: many components, holes, masks touching the array border
        pred = rng.random(shape) < rng.uniform(0.05, 0.9)
        true = rng.random(shape) < rng.uniform(0.05, 0.9)
    else:  # smooth blobs, the shapes a segmentation produces
        pred = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
        true = ndimage.gaussian_filter(rng.random(shape), 2.0) > 0.5
    pred[rng.integers(shape[0]), rng.integers(shape[1])] = True  # non-empty
    true[rng.integers(shape[0]), rng.integers(shape[1])] = True
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, 2))  # anisotropic, (row, col) mm
    _assert_agree(pred, true, spacing)


def _real_pairs(slices):
    """Prediction-like pairs from real Sunnybrook masks: a neighbouring slice of the same patient,
    an eroded, a dilated and a shifted truth, and a truth plus a far-away blob."""
    for k, s in enumerate(slices):
        true = s.mask
        yield "eroded", true, ndimage.binary_erosion(true, iterations=2), s.spacing
        yield "dilated", true, ndimage.binary_dilation(true, iterations=3), s.spacing
        yield "shifted", true, np.roll(true, (3, -2), axis=(0, 1)), s.spacing
        outlier = true.copy()
        outlier[5:9, 5:9] = True
        yield "outlier", true, outlier, s.spacing
        if k + 1 < len(slices) and slices[k + 1].patient_id == s.patient_id:
            yield "neighbour", true, slices[k + 1].mask, s.spacing


def test_real_masks_agree_with_monai(sunnybrook):
    slices = [s for s in sunnybrook[0] if s.mask.any()][::4]  # 14 of the 56 slices
    n = 0
    for _, true, pred, spacing in _real_pairs(slices):
        _assert_agree(pred, true, tuple(spacing))
        n += 1
    assert n >= 60


def test_star_square_protocol_is_monai_on_the_cropped_masks(sunnybrook):
    """evaluate_masks = MONAI applied to the star's square (the square's edge is the border)."""
    slices = [s for s in sunnybrook[0] if s.mask.any()][1::6]
    for name, true, pred, spacing in _real_pairs(slices):
        rows, cols = np.nonzero(true)
        center = (float(cols.mean()), float(rows.mean()))  # (x, y) = (column, row)
        radius = 20.0 if name == "dilated" else 65.0  # 20 px cuts the dilated mask
        result = evaluate_masks(pred, true, spacing, center, radius)
        square = star_square(center, radius, true.shape)
        ref = _monai(pred[square], true[square], tuple(spacing))
        if name == "outlier" and radius == 65.0:  # the blob at (5..8, 5..8) is outside the square
            assert result["hd"] == pytest.approx(hausdorff_distance(true, true), abs=1e-12)
        for key in ("dice", "hd", "assd"):
            assert result[key] == pytest.approx(ref[key], rel=RTOL, abs=1e-7), (name, key)
        assert result["hd95"] == pytest.approx(ref["hd95"], rel=RTOL_HD95), (name, "hd95")


def test_hd95_is_not_medpys_union_percentile():
    """Documented: HD95 = max of the two directed 95th percentiles (MONAI), not MedPy's
    percentile of the union; a spike on the prediction shows the difference."""
    true = np.zeros((40, 40), bool)
    true[10:30, 10:30] = True
    pred = true.copy()
    pred[19:21, 30:38] = True  # an 8 px spike: far from T in P->T, T->P distances all 0
    a, b = surface_distances(pred, true)
    union = float(np.percentile(np.concatenate([a, b]), 95))
    ours = hd95(pred, true)
    assert ours == max(np.percentile(a, 95), np.percentile(b, 95))
    assert ours == pytest.approx(_monai(pred, true, (1.0, 1.0))["hd95"], rel=RTOL)
    assert (union, ours) == (4.0, 6.0)


def test_empty_mask_conventions_relative_to_monai():
    """The documented differences, exactly: ours on the left, MONAI's on the right."""
    empty = np.zeros((12, 12), bool)
    full = empty.copy()
    full[3:8, 2:9] = True
    spacing = (1.0, 1.5)
    # both empty: a perfect prediction of nothing; MONAI: Dice nan (ignore_empty) or 1, rest nan
    ours, ref = _ours(empty, empty, spacing), _monai(empty, empty, spacing)
    assert ours == {"dice": 1.0, "hd": 0.0, "hd95": 0.0, "assd": 0.0}
    assert ref["dice"] == 1.0 and math.isnan(ref["dice_ignore_empty"])
    assert math.isnan(ref["hd"]) and math.isnan(ref["hd95"]) and math.isnan(ref["assd"])
    # exactly one empty: ours Dice 0 and distances nan; MONAI: HD, ASSD inf, HD95 nan
    for pred, true in ((empty, full), (full, empty)):
        ours, ref = _ours(pred, true, spacing), _monai(pred, true, spacing)
        assert ours["dice"] == ref["dice"] == 0.0
        assert all(math.isnan(ours[k]) for k in ("hd", "hd95", "assd"))
        assert ref["hd"] == math.inf and ref["assd"] == math.inf and math.isnan(ref["hd95"])
        # MONAI's default ignore_empty=True: nan for an empty truth, 0 for an empty prediction
        assert math.isnan(ref["dice_ignore_empty"]) == (not true.any())

