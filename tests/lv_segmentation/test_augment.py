"""Training data augmentation (lvseg.augment): the image, its mask and its LV centre move together,
flips are exact, draws are reproducible, ``none`` is today's training, resume stays exact."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

import lvseg.batch
from lvseg.augment import AugmentedBatch, augment_batch
from lvseg.checkpoint import load_checkpoint
from lvseg.config import TrainConfig
from lvseg.train import Trainer
from lvseg.train_choices import PRESETS, AugmentConfig
from lvseg_testing import same, tiny_config

SIZE, RADIUS = 128, 15.0
#: (x, y) disc centres, off the crop centre so that the affine moves them, near enough that
#: every disc stays inside the crop.
CENTRES = [(40.0, 50.0), (85.3, 70.6), (63.5, 63.5), (40.0, 85.2), (80.0, 40.0), (90.0, 80.0)]
GEOMETRY = AugmentConfig(flip=0.5, rotation=0.5, scale=0.2)


def _discs(centres: list[tuple[float, float]] = CENTRES) -> AugmentedBatch:
    """Phantoms: a bright disc (1 on 0) per image, its mask, centre and radius."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    masks = np.stack([(xx - x) ** 2 + (yy - y) ** 2 < RADIUS**2 for x, y in centres])
    masks_t = torch.from_numpy(masks)
    return AugmentedBatch(masks_t[:, None].float(), masks_t,
                          torch.tensor(centres, dtype=torch.float32),
                          torch.full((len(centres),), RADIUS))


def _centroids(masks: torch.Tensor) -> np.ndarray:
    return np.array([ndimage.center_of_mass(m)[::-1] for m in masks.numpy()])  # (x, y)


@pytest.mark.parametrize("preset", ["light", "standard", "elastic", "noflip"])
def test_the_mask_moves_with_the_image(preset: str) -> None:
    """The transformed mask is the transformed image thresholded at its mid level, up to the
    one-pixel band around the disc's edge (bilinear vs nearest sampling)."""
    batch = _discs()
    out = augment_batch(*batch, PRESETS[preset], np.random.default_rng(3))
    for image, mask in zip(out.images[:, 0].numpy(), out.masks.numpy()):
        assert mask.sum() > 0.5 * np.pi * RADIUS**2
        level = (image.min() + image.max()) / 2  # the intensity changes are monotone
        wrong = (image > level) != mask
        edge = ndimage.binary_dilation(mask) & ~ndimage.binary_erosion(mask)
        assert not (wrong & ~edge).any()
        assert wrong.sum() <= 0.25 * edge.sum()


@pytest.mark.parametrize("elastic", [0.0, 2.0])
def test_the_centre_is_where_the_image_moved_it(elastic: float) -> None:
    """On ramps (each pixel's own x or y as its intensity), the augmented image read at the new
    centre gives the old centre back: the centre moved as the pixels did."""
    batch = _discs()
    yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
    config = dataclasses.replace(GEOMETRY, elastic=elastic)
    for axis, ramp in enumerate((xx, yy)):
        images = ramp.expand(len(CENTRES), 1, SIZE, SIZE)
        out = augment_batch(images, *batch[1:], config, np.random.default_rng(2))
        at = out.centers / (SIZE - 1) * 2 - 1  # normalised, align_corners=True
        read = torch.nn.functional.grid_sample(out.images, at[:, None, None, :],
                                               align_corners=True)[:, 0, 0, 0]
        assert torch.allclose(read, batch.centers[:, axis], atol=0.02), (read, batch.centers)
        assert (out.centers - batch.centers).abs().max() > 5  # they did move


@pytest.mark.parametrize("config", [AugmentConfig(flip=1.0), GEOMETRY,
                                    dataclasses.replace(GEOMETRY, elastic=2.0)],
                         ids=["flips", "affine", "elastic"])
def test_several_points_per_image_move_as_the_pixels_do(config: AugmentConfig) -> None:
    """``centers`` (B, P, 2): each point moves as the pixels do (the ramps of the test above give
    its old coordinates back), points on the disc stay on the transformed disc, and the first
    point is mapped exactly as a (B, 2) centre (what ``--centres`` with ``--augment`` uses)."""
    batch = _discs()
    offsets = torch.tensor([[0.0, 0.0], [0.6 * RADIUS, 0.0], [-0.4 * RADIUS, -0.5 * RADIUS]])
    points = batch.centers[:, None, :] + offsets  # (6, 3, 2), all on the disc
    yy, xx = torch.meshgrid(torch.arange(float(SIZE)), torch.arange(float(SIZE)), indexing="ij")
    for axis, ramp in enumerate((xx, yy)):
        images = ramp.expand(len(CENTRES), 1, SIZE, SIZE)
        out = augment_batch(images, batch.masks, points, batch.radii, config,
                            np.random.default_rng(2))
        assert out.centers.shape == (6, 3, 2)
        at = out.centers / (SIZE - 1) * 2 - 1
        read = torch.nn.functional.grid_sample(out.images, at[:, None], align_corners=True)
        assert torch.allclose(read[:, 0, 0], points[..., axis], atol=0.02)
        assert (out.centers - points).abs().max() > 5  # they did move
        col, row = out.centers.round().long().unbind(-1)
        assert out.masks[torch.arange(6)[:, None], row, col].all()  # still on the disc
        one = augment_batch(images, batch.masks, batch.centers, batch.radii, config,
                            np.random.default_rng(2))
        assert torch.equal(one.centers, out.centers[:, 0]) and torch.equal(one.images, out.images)


def test_points_of_another_shape_are_refused() -> None:
    batch = _discs()
    with pytest.raises(ValueError, match=r"centers must have shape \(6, 2\) or \(6, P, 2\) to "
                                         r"match images \(6, 1, 128, 128\); got \(6, 3, 3\)"):
        augment_batch(batch.images, batch.masks, torch.zeros(6, 3, 3), batch.radii,
                      PRESETS["light"], np.random.default_rng(0))


@pytest.mark.parametrize("preset", ["light", "standard"])
def test_the_centre_is_the_transformed_disc_centroid(preset: str) -> None:
    """Up to the nearest-neighbour sampling of the mask (a fraction of a pixel)."""
    batch = _discs()
    out = augment_batch(*batch, PRESETS[preset], np.random.default_rng(5))
    assert np.abs(out.centers.numpy() - _centroids(out.masks)).max() < 0.35
    radii = np.sqrt(out.masks.numpy().sum(axis=(1, 2)) / np.pi)  # equivalent radius
    assert np.abs(out.radii.numpy() - radii).max() < 0.3
    assert (out.radii != RADIUS).sum() >= 5  # the radius scaled with the disc


def test_noflip_keeps_the_side_of_the_rv_and_standard_does_not() -> None:
    """``noflip`` is ``standard`` without its flips: an "RV" blob left of the LV disc (x - 25)
    stays on the left of the LV centre in every image (the rotation is at most 0.3 rad), where
    ``standard`` puts it on the right in about half of them."""
    batch = _discs([(64.0, 64.0)] * 32)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    rv = torch.from_numpy((xx - 39.0) ** 2 + (yy - 64.0) ** 2 < 8.0**2)
    images = batch.images + 0.5 * rv.float()  # the RV: a dimmer blob outside the mask

    def rv_right_of_lv(preset: str) -> np.ndarray:
        out = augment_batch(images, *batch[1:], PRESETS[preset], np.random.default_rng(7))
        dim = (out.images[:, 0] > 0.2) & (out.images[:, 0] < 0.8)  # the RV's pixels
        rv_x = np.array([np.argwhere(d.numpy())[:, 1].mean() for d in dim])
        return rv_x > out.centers[:, 0].numpy()

    assert dataclasses.replace(PRESETS["standard"], flip=0.0) == PRESETS["noflip"]
    assert not rv_right_of_lv("noflip").any()
    assert 8 <= rv_right_of_lv("standard").sum() <= 24


def test_the_flips_map_the_centre_as_they_map_the_disc() -> None:
    batch = _discs()
    out = augment_batch(*batch, AugmentConfig(flip=0.5), np.random.default_rng(0))
    flipped = (out.centers != batch.centers).numpy()  # (B, 2): which axes were flipped
    assert flipped.any(axis=0).all() and not flipped.all(axis=1).all()  # a mix, both axes
    for before, after in ((batch.centers.numpy(), out.centers.numpy()),
                          (_centroids(batch.masks), _centroids(out.masks))):
        assert np.allclose(after, np.where(flipped, SIZE - 1 - before, before), atol=1e-4)


def test_what_comes_into_the_crop_is_the_lowest_intensity_and_background() -> None:
    """Zooming out brings in the outside: the image reads its lowest value, the mask False."""
    images = torch.linspace(-1.0, 2.0, SIZE * SIZE).reshape(1, 1, SIZE, SIZE).repeat(8, 1, 1, 1)
    batch = AugmentedBatch(images, torch.ones(8, SIZE, SIZE, dtype=torch.bool),
                           torch.full((8, 2), 63.5), torch.full((8,), 60.0))
    out = augment_batch(*batch, AugmentConfig(scale=0.5), np.random.default_rng(0))
    small = out.radii < 0.9 * 60  # zoomed out by more than 10 %: the corners are outside
    assert small.any()
    assert not out.masks[small][:, 0, 0].any() and out.masks[small][:, 64, 64].all()
    assert torch.equal(out.images[small][:, 0, 0, 0], torch.full((int(small.sum()),), -1.0))
    assert torch.allclose(out.images[:, 0, 64, 64], images[:, 0, 64, 64], atol=0.05)  # inside


def test_a_flip_twice_is_the_identity_exactly() -> None:
    batch = _discs()
    images = torch.randn(len(CENTRES), 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    batch = batch._replace(images=images)
    once = augment_batch(*batch, AugmentConfig(flip=1.0), np.random.default_rng(0))
    assert not torch.equal(once.images, images)
    assert torch.equal(once.images, images.flip(-1).flip(-2))  # both flips, probability 1
    twice = augment_batch(*once, AugmentConfig(flip=1.0), np.random.default_rng(1))
    for a, b in zip(twice, batch):
        assert torch.equal(a, b)


def test_none_is_the_batch_itself_and_draws_nothing() -> None:
    batch = _discs()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    out = augment_batch(*batch, PRESETS["none"], rng)
    assert all(a is b for a, b in zip(out, batch))
    assert rng.bit_generator.state == state


def test_the_inputs_are_never_modified() -> None:
    batch = _discs()
    copies = [t.clone() for t in batch]
    for preset in ("standard", "elastic"):
        augment_batch(*batch, PRESETS[preset], np.random.default_rng(0))
    assert all(torch.equal(a, b) for a, b in zip(batch, copies))


def test_a_seed_gives_the_same_batch_and_another_seed_another() -> None:
    batch = _discs()
    a, b, c = (augment_batch(*batch, PRESETS["elastic"], np.random.default_rng(s))
               for s in (7, 7, 8))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.images, c.images)


def test_the_intensity_changes_stay_in_their_ranges() -> None:
    images = torch.linspace(-2.0, 3.0, SIZE * SIZE).reshape(1, 1, SIZE, SIZE).repeat(50, 1, 1, 1)
    batch = _discs([(64.0, 64.0)] * 50)._replace(images=images)
    config = AugmentConfig(gamma=0.3, contrast=0.2, brightness=0.2)
    out = augment_batch(*batch, config, np.random.default_rng(0)).images.flatten(1)
    assert (out.diff(dim=1) >= 0).all()  # monotone: the order of intensities is kept
    low, high = out[:, 0], out[:, -1]  # -2 and 3 -> a x + b
    assert torch.all((high - low) / 5 <= 1.2 + 1e-5) and torch.all((high - low) / 5 >= 0.8 - 1e-5)
    b = (3 * low + 2 * high) / 5  # a * 0 + b
    assert b.abs().max() <= 0.2 + 1e-5 and b.abs().max() > 0.1
    middle = out[:, SIZE * SIZE // 2]  # gamma moved the middle of the range
    assert (((middle - low) / (high - low)) - 0.5).abs().max() > 0.05


@pytest.mark.parametrize(("options", "message"), [
    ({"flip": 1.5}, "flip must be a number in [0, 1]; got 1.5"),
    ({"rotation": -0.1}, "rotation must be a number in [0, 3.14159]; got -0.1"),
    ({"scale": 0.9}, "scale must be a number in [0, 0.5]; got 0.9"),
    ({"elastic": float("nan")}, "elastic must be a number in [0, 16]; got nan"),
    ({"elastic_grid": 1}, "elastic_grid must be an integer in [2, 32]; got 1"),
    ({"gamma": "0.2"}, "gamma must be a number in [0, 2]; got '0.2'"),
    ({"contrast": True}, "contrast must be a number in [0, 0.9]; got True"),
    ({"brightness": 6}, "brightness must be a number in [0, 5]; got 6"),
])  # fmt: skip
def test_bad_settings_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as error:
        AugmentConfig(**options)  # type: ignore[arg-type]
    assert str(error.value) == message


def test_bad_shapes_and_presets_are_refused_by_name() -> None:
    batch = _discs()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"images must have shape \(B, 1, H, W\); got \(6, 128"):
        augment_batch(batch.images[:, 0], *batch[1:], PRESETS["light"], rng)
    with pytest.raises(ValueError, match=r"centers must have shape \(6, 2\) or \(6, P, 2\) to "
                                         r"match images \(6, 1, 128, 128\); got \(6, 3\)"):
        augment_batch(batch.images, batch.masks, torch.zeros(6, 3), batch.radii, PRESETS["light"],
                      rng)
    with pytest.raises(ValueError, match="augment must be one of 'none', 'light', 'standard', "
                                         "'elastic', 'noflip'; got 'heavy'"):
        TrainConfig(method="unet", augment="heavy")


def test_the_default_is_noflip_and_a_config_saved_before_loads_as_it_trained() -> None:
    """Issue #20's ACDC study made augmentation the default, ``standard`` and then ``noflip``
    (the flips made EDPCNN's demo training fall; ``--help`` says so, with the thesis' ``none``
    in brackets); a ``config.json`` written before the option (no ``augment`` key) trained
    without augmentation and loads so (``lvseg train --resume`` reads it with ``from_dict``); a
    stored key keeps its value, ``standard`` included."""
    assert TrainConfig(method="unet").augment == "noflip"
    assert TrainConfig.from_dict({"method": "unet"}).augment == "none"  # runs saved before
    stored = tiny_config("edpcnn").to_dict()
    assert stored.pop("augment") == "noflip"
    assert TrainConfig.from_dict(json.loads(json.dumps(stored))).augment == "none"
    for preset in PRESETS:
        assert TrainConfig.from_dict({**stored, "augment": preset}).augment == preset


# ------------------------------------------------------------------ in training
def _losses(config: TrainConfig, run: Path, data: object) -> list[float]:
    trainer = Trainer(config, run, data=data)  # type: ignore[arg-type]
    events: list[dict[str, object]] = []
    trainer.add_hook(lambda t, e: events.append(e))
    trainer.fit()
    return [e["loss"] for e in events if e["event"] == "step"]  # type: ignore[misc]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["unet", "edpcnn"])
def test_none_trains_as_without_augmentation(tmp_path: Path, tiny_data, method: str,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``--augment none`` gives bit-identical losses to a step that never augments;
    ``standard`` changes them (each method sees the augmented batch)."""
    config = tiny_config(method, iterations=3, augment="none")
    none = _losses(config, tmp_path / "none", tiny_data)
    standard = _losses(dataclasses.replace(config, augment="standard"), tmp_path / "std",
                       tiny_data)
    monkeypatch.setattr(lvseg.batch, "augment_batch",
                        lambda images, masks, centers, radii, config, rng: AugmentedBatch(
                            images, masks, centers, radii))
    assert _losses(config, tmp_path / "never", tiny_data) == none
    assert standard != none


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["unet", "edpcnn"])
def test_resume_with_augmentation_is_exact(tmp_path: Path, tiny_data, method: str) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config(method, iterations=4, augment="elastic")
    Trainer(config, tmp_path / "straight", data=tiny_data).fit()
    Trainer(dataclasses.replace(config, iterations=2), tmp_path / "split", data=tiny_data).fit()
    Trainer(config, tmp_path / "split", data=tiny_data, resume=True).fit()
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in ("straight", "split"))
    for key in ("model", "optimizer", "numpy_rng"):
        assert same(a[key], b[key]), key
    assert json.loads((tmp_path / "split" / "config.json").read_text())["augment"] == "elastic"
