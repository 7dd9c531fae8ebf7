"""Metrics against hand-computed values and brute-force pairwise boundary distances."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from lvseg.metrics import (
    dice,
    evaluate_batch,
    evaluate_masks,
    star_square,
    summarize,
)
from lvseg.surface import (
    assd,
    hausdorff_distance,
    hd95,
    surface_distances,
)


def _brute_force(pred, true, spacing):
    """HD, ASSD and HD95 from all pairwise distances between boundary pixel centres."""

    def points(mask):
        p = np.pad(mask, 1)
        interior = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        rows, cols = np.nonzero(mask & ~interior)
        return np.stack([rows * spacing[0], cols * spacing[1]], axis=1)

    d = cdist(points(pred), points(true))
    to_true, to_pred = d.min(axis=1), d.min(axis=0)
    hd = max(to_true.max(), to_pred.max())
    return hd, (to_true.sum() + to_pred.sum()) / (len(to_true) + len(to_pred)), max(
        np.percentile(to_true, 95), np.percentile(to_pred, 95)
    )


def test_dice_by_hand():
    pred = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]], bool)
    true = np.array([[0, 1, 0], [0, 1, 1], [0, 0, 0]], bool)
    assert dice(pred, true) == pytest.approx(2 * 2 / (3 + 3))
    assert dice(pred, pred) == 1.0 and dice(pred, ~pred) == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_dice_against_jaccard_and_confusion_formulas(seed):
    rng = np.random.default_rng(seed)
    pred, true = rng.random((2, 17, 23)) < rng.uniform(0.1, 0.9, (2, 1, 1))
    tp, fp, fn = (pred & true).sum(), (pred & ~true).sum(), (~pred & true).sum()
    jaccard = tp / (pred | true).sum()
    assert dice(pred, true) == pytest.approx(2 * jaccard / (1 + jaccard))
    assert dice(pred, true) == pytest.approx(2 * tp / (2 * tp + fp + fn))


@pytest.mark.parametrize("seed", range(25))
def test_hd_hd95_and_assd_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(4, 20, 2))
    pred = rng.random(shape) < rng.uniform(0.2, 0.8)
    true = rng.random(shape) < rng.uniform(0.2, 0.8)
    pred[0, 0] = true[-1, -1] = True  # non-empty
    spacing = tuple(rng.uniform(0.5, 2.0, 2))
    hd, mean, hd_95 = _brute_force(pred, true, spacing)
    assert hausdorff_distance(pred, true, spacing) == pytest.approx(hd)
    assert hd95(pred, true, spacing) == pytest.approx(hd_95) and hd_95 <= hd
    assert assd(pred, true, spacing) == pytest.approx(mean)
    to_true, to_pred = surface_distances(pred, true, spacing)
    assert to_true.max() <= hd + 1e-9 and to_pred.max() <= hd + 1e-9


def test_shifted_square_by_hand():
    a = np.zeros((20, 20), bool)
    a[5:12, 5:12] = True
    b = np.roll(a, 2, axis=0)  # two rows down
    assert hausdorff_distance(a, b, (1.5, 0.7)) == pytest.approx(3.0)
    assert hausdorff_distance(a, b, 1.5) == pytest.approx(3.0)
    assert hausdorff_distance(a, a, 1.5) == 0.0 and assd(a, a, 1.5) == 0.0


def test_empty_masks_follow_the_documented_convention():
    empty, full = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    full[2:5, 2:5] = True
    assert (
        dice(empty, empty), hausdorff_distance(empty, empty), hd95(empty, empty), assd(empty, empty)
    ) == (1.0, 0.0, 0.0, 0.0)
    for pred, true in ((empty, full), (full, empty)):
        assert dice(pred, true) == 0.0
        assert math.isnan(hausdorff_distance(pred, true)) and math.isnan(assd(pred, true))
        assert math.isnan(hd95(pred, true))
        assert [d.size for d in surface_distances(pred, true)] == [0, 0]


def test_star_square_by_hand_and_clipped():
    assert star_square((10.0, 5.0), 3.0, (64, 64)) == (slice(2, 9), slice(7, 14))
    assert star_square((10.4, 5.6), 3.0, (64, 64)) == (slice(3, 10), slice(7, 14))
    assert star_square((2.0, 60.0), 5.0, (64, 70)) == (slice(55, 64), slice(0, 8))
    assert star_square((64.0, 64.0), 65.0, (128, 128)) == (slice(0, 128), slice(0, 128))


@pytest.mark.parametrize("n_lines", [4, 8, 24, 100])
def test_star_square_tightly_holds_the_stars_nearest_pixels(n_lines):
    rng = np.random.default_rng(n_lines)
    center, radius, m = rng.uniform(80, 120, 2), float(rng.uniform(10, 65)), 65
    angles = 2 * np.pi * np.arange(n_lines) / n_lines
    dist = radius * np.arange(1, m + 1) / m
    x = center[0] + np.cos(angles)[:, None] * dist
    y = center[1] + np.sin(angles)[:, None] * dist
    rows, cols = np.floor(y + 0.5).astype(int), np.floor(x + 0.5).astype(int)  # nearest pixel
    sq_rows, sq_cols = star_square(center, radius, (200, 200))
    assert sq_rows.start <= rows.min() and rows.max() < sq_rows.stop
    assert sq_cols.start <= cols.min() and cols.max() < sq_cols.stop
    # lines at 0, 90, 180 and 270 degrees reach the square's four sides: it is tight
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (
        sq_rows.start, sq_rows.stop, sq_cols.start, sq_cols.stop,
    )


def test_evaluate_masks_ignores_predictions_outside_the_square():
    true = np.zeros((64, 64), bool)
    true[20:40, 22:38] = True
    pred = np.roll(true, 1, axis=1)
    pred[55:60, 55:60] = True  # a second component far away
    result = evaluate_masks(pred, true, (1.2, 1.4), center=(30.0, 29.5), radius=16)
    rows, cols = star_square((30.0, 29.5), 16, (64, 64))
    assert result == {
        "dice": dice(pred[rows, cols], true[rows, cols]),
        "hd": pytest.approx(1.4),
        "hd95": pytest.approx(1.4),
        "assd": assd(pred[rows, cols], true[rows, cols], (1.2, 1.4)),
        "pred_empty": False,
        "true_empty": False,
    }
    assert hausdorff_distance(pred, true, (1.2, 1.4)) > 20  # without the square


def test_evaluate_masks_empty_prediction_is_flagged():
    true = np.zeros((32, 32), bool)
    true[10:20, 10:20] = True
    pred = np.zeros_like(true)
    pred[0:3, 0:3] = True  # outside the square: empty inside it
    result = evaluate_masks(pred, true, 1.0, (14.5, 14.5), 8)
    assert result["dice"] == 0.0 and result["pred_empty"] and not result["true_empty"]
    assert math.isnan(result["hd"]) and math.isnan(result["hd95"]) and math.isnan(result["assd"])


def test_evaluate_batch_matches_single_calls_and_takes_tensors():
    rng = np.random.default_rng(0)
    trues = np.zeros((3, 40, 40), bool)
    trues[:, 12:28, 10:30] = True
    preds = trues ^ (rng.random((3, 40, 40)) < 0.05)
    centers = np.array([[19.5, 19.5], [20.0, 21.0], [18.0, 19.0]])
    radii = [10.0, 12.0, 15.0]
    results = evaluate_batch(torch.from_numpy(preds), trues, 1.3, torch.from_numpy(centers), radii)
    for k in range(3):
        assert results[k] == evaluate_masks(preds[k], trues[k], 1.3, centers[k], radii[k])
    shared = evaluate_batch(preds, trues, (1.3, 1.3), centers, 65)
    assert [r["dice"] for r in shared] == [dice(p, t) for p, t in zip(preds, trues)]


def test_summarize_counts_undefined_distances():
    summary = summarize([
        {"dice": 0.9, "hd": 4.0, "assd": 1.0},
        {"dice": 0.7, "hd": 6.0, "assd": 2.0},
        {"dice": 0.0, "hd": math.nan, "assd": math.nan},
    ])
    assert summary["n"] == 3 and summary["n_undefined"] == 1
    assert summary["dice_mean"] == pytest.approx(1.6 / 3)
    assert summary["hd_mean"] == 5.0 and summary["hd_std"] == 1.0 and summary["assd_mean"] == 1.5
    assert math.isnan(summarize([])["dice_mean"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dice(np.zeros((3, 3)), np.zeros((3, 4))), "same shape; got (3, 3) and (3, 4)"),
        (lambda: dice(np.zeros((2, 3, 3)), np.zeros((2, 3, 3))), "pred must be a 2-D mask"),
        (lambda: assd(np.ones((3, 3)), np.ones((3, 3)), (1, 2, 3)), "spacing must be a positive"),
        (lambda: hausdorff_distance(np.ones((3, 3)), np.ones((3, 3)), 0), "got 0"),
        (lambda: star_square((5, 5), 0, (10, 10)), "radius must be a positive number"),
        (lambda: star_square((50, 5), 3, (10, 10)), "misses the 10x10 image"),
        (lambda: evaluate_batch(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), 1, [[1, 1]], 2),
         "centers must have shape (2, 2); got (1, 2)"),
    ],
)
def test_invalid_input_messages(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_square_dice_is_evaluate_batchs_dice():
    """The Dice-only path model selection uses gives evaluate_batch's Dice, slice by slice."""
    from lvseg.metrics import evaluate_batch, square_dice

    rng = np.random.default_rng(3)
    preds, trues = rng.random((6, 48, 40)) > 0.6, rng.random((6, 48, 40)) > 0.5
    centers = rng.uniform(5, 35, size=(6, 2))
    rows = evaluate_batch(preds, trues, 1.2, centers, 12.0)
    assert square_dice(preds, trues, centers, 12.0) == [r["dice"] for r in rows]
    with pytest.raises(ValueError, match=r"centers must have shape \(6, 2\)"):
        square_dice(preds, trues, centers[:2], 12.0)
