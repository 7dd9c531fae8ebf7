"""Evaluation protocol, figures, image reading and prediction on new slices."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from lvseg.data import bundled_sunnybrook
from lvseg.evaluate import evaluate_run
from lvseg.runs import load_run
from lvseg.images import read_image
from lvseg.predict import predict_image
from lvseg.figures import prediction_figure, training_curves

pytestmark = pytest.mark.usefixtures("one_thread")


def test_evaluate_run_summary_and_rows(tiny_runs: dict[str, Path]) -> None:
    result = evaluate_run(tiny_runs["edpcnn"], split="val")
    assert result["method"] == "edpcnn" and result["split"] == "val" and result["n"] == 8
    assert result["checkpoint"] == "best.pt"
    dice = [row["dice"] for row in result["per_image"]]
    assert result["dice"] == pytest.approx(np.mean(dice))
    assert result["dice_std"] == pytest.approx(np.std(dice))
    for row in result["per_image"]:  # a DP contour is never empty: every distance is defined
        assert row["hd_mm"] >= row["assd_mm"] >= 0 and row["hd_mm"] >= row["hd95_mm"] >= 0


def test_unet_and_unet_dp_share_the_training_but_not_the_prediction(tiny_runs: dict[str, Path]) -> None:
    a, b = load_run(tiny_runs["unet"]), load_run(tiny_runs["unet-dp"])
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)  # same seed, same training
    ra, rb = evaluate_run(tiny_runs["unet"], split="val"), evaluate_run(tiny_runs["unet-dp"], split="val")
    assert ra["per_image"][0]["center"] == rb["per_image"][0]["center"]


def test_center_jitter_is_seeded_and_stays_inside(tiny_runs: dict[str, Path]) -> None:
    plain = evaluate_run(tiny_runs["edpcnn"], split="test")
    a = evaluate_run(tiny_runs["edpcnn"], split="test", center_jitter=0.5, jitter_seed=1)
    b = evaluate_run(tiny_runs["edpcnn"], split="test", center_jitter=0.5, jitter_seed=1)
    assert [r["center"] for r in a["per_image"]] == [r["center"] for r in b["per_image"]]
    assert [r["center"] for r in a["per_image"]] != [r["center"] for r in plain["per_image"]]
    with pytest.raises(ValueError, match="center_jitter must be a number >= 0; got -1"):
        evaluate_run(tiny_runs["edpcnn"], center_jitter=-1)


def test_figures_for_dp_and_pixel_methods(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    for method in ("edpcnn", "unet"):
        evaluate_run(tiny_runs[method], split="test", figures_dir=tmp_path / method, max_figures=1)
        (png,) = (tmp_path / method).glob("*.png")
        assert png.stat().st_size > 10_000
    training_curves(tiny_runs["edpcnn"] / "metrics.jsonl", tmp_path / "curves.png")
    prediction_figure(tmp_path / "p.png", np.zeros((8, 8)), np.ones((8, 8), bool), (4.0, 4.0))
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "p.png").is_file()


def test_read_image_formats(tmp_path: Path) -> None:
    dicom = next((bundled_sunnybrook() / "dicoms" / "SCD0000101").glob("*.dcm"))
    image, spacing = read_image(dicom)
    assert image.shape == (256, 256) and image.dtype == np.float32
    assert spacing == pytest.approx((1.367, 1.367), abs=1e-3)

    volume = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.diag([1.5, 2.0, 8.0, 1.0])), tmp_path / "v.nii.gz")
    image, spacing = read_image(tmp_path / "v.nii.gz", slice_index=1)
    assert np.array_equal(image, volume[:, :, 1]) and spacing == (1.5, 2.0)
    with pytest.raises(ValueError, match="is a volume with 3 slices; pick one with --slice Z"):
        read_image(tmp_path / "v.nii.gz")

    np.save(tmp_path / "a.npy", np.ones((4, 5)))
    assert read_image(tmp_path / "a.npy")[1] is None
    np.save(tmp_path / "b.npy", np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match=r"must hold a 2-D slice; got shape \(2, 4, 5\)"):
        read_image(tmp_path / "b.npy")
    (tmp_path / "c.txt").write_text("hello")
    with pytest.raises(ValueError, match="is not a readable DICOM, NIfTI"):
        read_image(tmp_path / "c.txt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(tmp_path / "missing.dcm")


def test_predict_maps_the_contour_back_to_the_input_grid(tiny_runs: dict[str, Path]) -> None:
    """Predicting on a 2x up-sampled slice gives (about) the 2x up-sampled mask."""
    run = load_run(tiny_runs["edpcnn"])
    image = np.random.default_rng(0).random((160, 140)).astype(np.float32)
    small = predict_image(run, image, (70.0, 80.0), (1.37, 1.37))
    big_image = np.kron(image, np.ones((2, 2), np.float32))
    big = predict_image(run, big_image, (140.5, 160.5), (0.685, 0.685))
    assert small["mask"].shape == (160, 140) and big["mask"].shape == (320, 280)
    assert small["mask"][80, 70] and big["mask"][161, 141]
    area_small, area_big = small["mask"].sum(), big["mask"].sum()
    assert abs(area_big / (4 * area_small) - 1) < 0.15
    assert small["contour"].shape == (12, 2)
    with pytest.raises(ValueError, match="lies outside the 140x160 image"):
        predict_image(run, image, (-3.0, 10.0))


def test_predict_pixel_method_keeps_the_centre_in_place(tiny_runs: dict[str, Path]) -> None:
    run = load_run(tiny_runs["unet"])
    image = np.random.default_rng(1).random((90, 100)).astype(np.float32)
    result = predict_image(run, image, (50.0, 45.0))
    assert result["contour"] is None and result["mask"].shape == (90, 100)


def test_score_is_segment_then_the_square_metrics() -> None:
    """lvseg.score against its definition: segment, then Dice (and distances) in the square."""
    import torch

    from lvseg.data import make_phantoms, preprocess
    from lvseg.metrics import evaluate_batch, square_dice
    from lvseg.models import UNet
    from lvseg.score import score
    from lvseg.segment import segment
    from lvseg.star import StarConfig

    data, _ = preprocess(make_phantoms(6, size=64, seed=5), size=64)
    t = data.to_tensors()
    star = StarConfig(n_lines=12, n_points=24, radius=24.0)
    torch.manual_seed(0)
    unet = UNet(base_channels=4, depth=2)
    for method in ("unet", "unet-dp", "edpcnn"):
        seg = segment(method, unet, t["images"], t["centers"], star)
        dice = square_dice(seg.masks, t["masks"], t["centers"], star.radius)
        rows = evaluate_batch(seg.masks, t["masks"], 1.5, t["centers"], star.radius)
        quick = score(method, unet, t["images"], t["masks"], t["centers"], star)
        full = score(method, unet, t["images"], t["masks"], t["centers"], star, spacing=1.5)
        assert torch.equal(quick.segmentation.masks, seg.masks) and quick.rows is None
        assert quick.dice == dice == full.dice and quick.mean_dice == float(np.mean(dice))
        assert full.rows == rows
