"""``lvseg train --negatives``: the training patients' slices without LV as all-background crops.

The references are independent: the loader's ``lv_centre`` against SciPy's centre of mass of
the label map, a negative's crop against a bright marker drawn at that centre, the training
split against :func:`~lvseg.prepare.prepare_data` without the option, the loss on an empty
target against its formula.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from scipy import ndimage

import lvseg.data.acdc as acdc
from lvseg.cli import main
from lvseg.config import TrainConfig
from lvseg.data import Slice, load_acdc
from lvseg.methods import pixel_loss
from lvseg.negatives import prepare_negatives, prepare_training
from lvseg.prepare import prepare_data
from lvseg.volumes import write_phantom_patient
from lvseg_testing import one_error_line

ZOOMS = (1.5, 1.25, 10.0)


def _write(path: Path, data: np.ndarray) -> None:
    img = nib.Nifti1Image(data, np.diag([*ZOOMS, 1.0]))
    img.header.set_zooms(ZOOMS[: data.ndim])
    nib.save(img, str(path))


@pytest.fixture()
def acdc_dir(tmp_path: Path) -> tuple[Path, dict[int, np.ndarray]]:
    """One patient, 5 slices per frame: frame 1 has LV on z = 1, 2; frame 2 on z = 0, 4 (z = 2
    is a tie); frame 3 has no LV at all."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "patient001"
    folder.mkdir()
    labels_of = {}
    for frame, lv in ((1, (1, 2)), (2, (0, 4)), (3, ())):
        labels = np.zeros((16, 14, 5), np.uint8)
        labels[1:4, 1:12, :] = 1  # RV on every slice
        for z in lv:
            labels[6 + z : 11, 3 : 8 + z, z] = 3  # an LV of its own size per slice
        _write(folder / f"patient001_frame{frame:02d}.nii.gz",
               rng.uniform(0, 500, labels.shape).astype(np.float32))
        _write(folder / f"patient001_frame{frame:02d}_gt.nii.gz", labels)
        labels_of[frame] = labels
    return tmp_path, labels_of


def test_the_loader_keeps_slices_without_lv_with_the_nearest_lv_centre(acdc_dir) -> None:  # type: ignore[no-untyped-def]
    root, labels_of = acdc_dir
    slices, report = load_acdc(root, negatives=True)
    negatives = [s for s in slices if not s.has_lv]
    assert [(s.extras["frame"], s.extras["z"], s.extras["lv_z"]) for s in negatives] == [
        (1, 0, 1), (1, 3, 2), (1, 4, 2), (2, 1, 0), (2, 2, 0), (2, 3, 4)]  # tie: the lower z
    for s in negatives:
        assert s.mask.shape == s.image.shape and not s.mask.any()
        row, col = ndimage.center_of_mass(labels_of[s.extras["frame"]][:, :, s.extras["lv_z"]] == 3)
        np.testing.assert_allclose(s.extras["lv_centre"], (col, row))
    # the frame without any LV has no centre: its 5 slices are still skipped
    assert report.loaded == 10 and report.counts() == {acdc.REASON_NO_LV: 5}
    assert all("frame03" in m for m in report.messages(acdc.REASON_NO_LV))


def test_without_the_option_the_loader_gives_exactly_the_old_slices(acdc_dir) -> None:  # type: ignore[no-untyped-def]
    root, _ = acdc_dir
    old, report = load_acdc(root)
    kept, _ = load_acdc(root, negatives=True)
    with_lv = [s for s in kept if s.has_lv]
    assert [s.source for s in old] == [s.source for s in with_lv]
    for a, b in zip(old, with_lv):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.mask, b.mask)
        assert a.extras.keys() == {"frame", "z", "n_z", "labels"} == b.extras.keys()
    assert report.loaded == 4 and report.counts() == {acdc.REASON_NO_LV: 11}


def test_a_negative_is_cropped_around_its_lv_centre() -> None:
    yy, xx = np.mgrid[:90, :100]
    image = ((xx - 70) ** 2 + (yy - 40) ** 2 <= 6**2).astype(np.float32)  # a disc at (70, 40)
    item = Slice(image, np.zeros_like(image, bool), (1.37, 1.37), "p1", "demo",
                 extras={"lv_centre": (70.0, 40.0)})

    def marker(crop: np.ndarray) -> tuple[float, float]:
        row, col = ndimage.center_of_mass(crop > crop.mean())
        return col, row

    data = prepare_negatives([item], offset=0.0, size=32)
    assert data.images.shape == (1, 1, 32, 32) and not data.masks.any()
    np.testing.assert_allclose(marker(data.images[0, 0]), (16, 16), atol=1e-6)
    np.testing.assert_allclose(data.centers[0], (16, 16), atol=1e-4)
    moved = prepare_negatives([item], offset=1.0, seed=3, size=32)
    assert np.abs(moved.centers[0] - 16).max() > 2  # the crop moved: the marker moved along
    np.testing.assert_allclose(moved.centers[0], marker(moved.images[0, 0]), atol=1e-4)
    with pytest.raises(ValueError, match="demo: a negative must have an empty mask"):
        prepare_negatives([Slice(image, image > 0, (1.37, 1.37), "p1", "demo")])


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten phantom patients in the ACDC layout (thesis split: 005 and 010 validate)."""
    root = tmp_path_factory.mktemp("acdc")
    for n in range(1, 11):
        write_phantom_patient(root, f"patient{n:03d}", size=48, n_frames=4, seed=n, cine=False)
    return root


def _config(root: Path, **overrides: object) -> TrainConfig:
    return TrainConfig(**{"method": "unet", "data": "acdc", "data_dir": str(root),
                          "split": "thesis", "train_size": None, "crop_offset": 1.0,
                          **overrides})  # type: ignore[arg-type]


def test_negatives_join_training_only_and_change_nothing_else(phantoms: Path) -> None:
    plain = prepare_data(_config(phantoms))
    splits = prepare_training(_config(phantoms, negatives=True))
    slices, _ = load_acdc(phantoms, negatives=True)
    expected = sorted(s.source for s in slices
                      if not s.has_lv and s.patient_id not in ("patient005", "patient010"))
    assert expected  # the phantoms do have slices without LV, in training patients
    n = len(plain.data)
    np.testing.assert_array_equal(splits.train[: len(plain.train)], plain.train)
    np.testing.assert_array_equal(splits.train[len(plain.train):], n + np.arange(len(expected)))
    for name in ("val", "test", "unlabelled"):
        np.testing.assert_array_equal(getattr(splits, name), getattr(plain, name))
    for name in ("images", "masks", "centers", "radii"):
        np.testing.assert_array_equal(getattr(splits.data, name)[:n], getattr(plain.data, name))
    assert sorted(splits.data.sources[n:]) == expected
    assert not splits.data.masks[n:].any() and splits.data.masks[:n].any(axis=(1, 2)).all()
    assert f"negatives: {len(expected)} slices without LV" in splits.report
    assert prepare_training(_config(phantoms)).report == plain.report  # off: as before


def test_a_tiny_run_with_negatives_trains_and_records_the_option(phantoms: Path,
                                                                 tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = main(["train", "--method", "unet", "--data", "acdc", "--data-dir", str(phantoms),
                 "--split", "thesis", "--train-size", "all", "--negatives", "--crop-offset", "1",
                 "--iterations", "2", "--batch-size", "4", "--val-every", "2",
                 "--unet-channels", "4", "--unet-depth", "2", "--no-progress",
                 "--out", str(run)])
    assert code == 0
    assert json.loads((run / "config.json").read_text())["negatives"] is True
    assert (run / "best.pt").is_file()
    plain = TrainConfig.from_dict({k: v for k, v in _config(phantoms).to_dict().items()
                                   if k != "negatives"})
    assert plain.negatives is False  # a config.json from before the option: off


@pytest.mark.parametrize(("options", "named"), [
    (["--method", "edpcnn", "--data", "acdc", "--train-size", "all"], "method 'edpcnn'"),
    (["--method", "unet-dp", "--data", "acdc", "--train-size", "all"], "method 'unet-dp'"),
    (["--method", "unet", "--data", "sunnybrook", "--train-size", "all"], "data 'sunnybrook'"),
    (["--method", "unet", "--data", "synthetic", "--train-size", "all"], "data 'synthetic'"),
    (["--method", "unet", "--data", "acdc", "--train-size", "10"], "give --train-size all"),
])  # fmt: skip
def test_negatives_refuse_other_methods_datasets_and_subsets(
    options: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", *options, "--data-dir", str(tmp_path), "--negatives",
                 "--out", str(tmp_path / "run")])
    line = one_error_line(capsys)
    assert code == 2 and "negatives (--negatives)" in line and named in line, line
    assert not (tmp_path / "run").exists()


def test_the_pixel_loss_on_an_empty_target_is_finite_and_its_formula() -> None:
    logits = torch.randn(3, 1, 8, 8, requires_grad=True)
    empty = torch.zeros(3, 8, 8, dtype=torch.bool)
    loss = pixel_loss(logits, empty)
    prob = torch.sigmoid(logits.detach())
    bce = -torch.log1p(-prob).mean()
    dice = (1 - 1 / (prob.sum(dim=(1, 2, 3)) + 1)).mean()
    torch.testing.assert_close(loss.detach(), bce + dice)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # background everywhere is the optimum: a confident "no LV" costs almost nothing
    assert pixel_loss(torch.full((1, 1, 8, 8), -20.0), empty[:1]) < 1e-6
