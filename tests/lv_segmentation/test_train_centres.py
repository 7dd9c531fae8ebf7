"""``lvseg train --centres locator:RUN_DIR``: training stars at a locator's predicted centres.

The reference locator is an oracle "U-Net" that marks the brightest pixels (the bright square is
the LV it finds), so the predicted centre is known: the square's centroid.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import lvseg.runs
from lvseg.config import TrainConfig
from lvseg.runs import LoadedRun
from lvseg.train import Trainer
from lvseg.train_centres import predicted_centres
from lvseg_testing import tiny_config


class Bright(torch.nn.Module):
    """Logit > 0 on the brightest 15 % of each slice's intensity range."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x.amax(dim=(-2, -1), keepdim=True), x.amin(dim=(-2, -1), keepdim=True)
        return x - (hi - 0.15 * (hi - lo))


@pytest.fixture()
def oracle_locator(monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_run`` of any directory gives the oracle unet run."""
    monkeypatch.setattr(lvseg.runs, "load_run", lambda *a, **k: LoadedRun(
        tiny_config("unet"), Bright(), "oracle", 0))


def test_the_predicted_centre_is_the_locators_lv_inside_the_mask(oracle_locator: None) -> None:
    images = np.zeros((3, 64, 64), np.float32)
    masks = np.zeros((3, 64, 64), bool)
    images[0, 10:20, 30:44] = 1.0  # the LV the locator finds, off the crop's centre
    masks[0, 10:20, 30:44] = True
    masks[1, 28:36, 28:36] = True  # crop 1: nothing bright, no LV found
    images[2, 40:52, 40:52] = 1.0  # crop 2: the locator finds a blob outside the true LV
    masks[2, 40:52, 20:30] = True
    true = np.array([[35.0, 12.0], [31.5, 31.5], [25.0, 45.0]], np.float32)
    got = predicted_centres("locator:/any", images, masks, true)
    np.testing.assert_allclose(got[0], (36.5, 14.5), atol=1e-5)  # the square's centroid
    np.testing.assert_allclose(got[1], true[1])  # kept
    np.testing.assert_allclose(got[2], (29.0, 45.0))  # an LV pixel nearest to (45.5, 45.5)
    assert got.dtype == np.float32


def test_an_end_to_end_locator_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lvseg.runs, "load_run", lambda *a, **k: LoadedRun(
        tiny_config("edpcnn"), Bright(), "x", 0))
    with pytest.raises(ValueError, match="centres locator:/r: a edpcnn run's map is trained "
                       "through the DP and does not locate the LV; give a unet"):
        predicted_centres("locator:/r", np.zeros((1, 8, 8)), np.ones((1, 8, 8), bool),
                          np.zeros((1, 2)))


@pytest.mark.parametrize("method, centres, message", [
    ("unet", "locator:/r", "centres (--centres) applies to the methods trained through the DP "
     "(edpcnn, edpcnn-es, edpcnn-softdp); a unet run has no star in training: drop --centres"),
    ("edpcnn", "/r", "centres must be locator:RUN_DIR (a unet run directory whose U-Net finds "
     "the LV, e.g. one trained with --crop-offset 1); got '/r'"),
    ("edpcnn", "locator:", "centres must be locator:RUN_DIR"),
])
def test_centres_option_errors(method: str, centres: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(method=method, centres=centres)
    with pytest.raises(ValueError, match="centres_share"):
        TrainConfig(method="edpcnn", centres="locator:/r", centres_share=1.5)


@pytest.mark.parametrize("augment", ["standard", "elastic"])
def test_with_augmentation_the_star_is_at_the_augmented_locator_centre(
        oracle_locator: None, tiny_data: Any, tmp_path: Path, augment: str) -> None:
    """The locator's centre moves with the augmented image (as the true centre does) and stays
    on the augmented LV; before, ``--centres`` with ``--augment`` was refused."""
    config = tiny_config("edpcnn", iterations=1, centres="locator:/any", centres_share=1.0,
                         augment=augment, batch_size=8)
    trainer = Trainer(config, tmp_path / "run", data=tiny_data)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    loss = trainer.method.loss

    def spy(net: Any, images: Any, masks: Any, centers: Any, angles: Any) -> Any:
        seen.append((centers.cpu().numpy(), masks.cpu().numpy()))
        return loss(net, images, masks, centers, angles)

    trainer.method = dataclasses.replace(trainer.method, loss=spy)
    drawn: list[torch.Tensor] = []
    draw = trainer.sampler.next
    trainer.sampler.next = lambda: drawn.append(draw()) or drawn[-1]  # type: ignore[method-assign]
    trainer.step()
    centers, masks = seen[0]
    batch = trainer.data.train[drawn[0].numpy()]
    col, row = np.floor(centers + 0.5).astype(int).T
    assert masks[np.arange(len(centers)), row, col].all()  # every star starts on the LV
    assert np.abs(centers - trainer.predicted[batch]).max() > 1  # moved with the images


def test_training_puts_the_share_of_stars_at_the_predicted_centres(
        oracle_locator: None, tiny_data: Any, tmp_path: Path) -> None:
    # unaugmented, so that the star goes to the locator's own centre (augmented: the test above)
    config = tiny_config("edpcnn", iterations=1, centres="locator:/any", centres_share=1.0,
                         augment="none")
    assert config.centres == "locator:/any" and config.to_dict()["centres_share"] == 1.0
    trainer = Trainer(config, tmp_path / "run", data=tiny_data)
    train = trainer.data.train
    true = trainer.centers.numpy()
    assert not np.allclose(trainer.predicted[train], true[train])  # the oracle is not the truth
    seen: list[np.ndarray] = []
    loss = trainer.method.loss

    def spy(net: Any, images: Any, masks: Any, centers: Any, angles: Any) -> Any:
        seen.append(centers.cpu().numpy())
        return loss(net, images, masks, centers, angles)

    trainer.method = dataclasses.replace(trainer.method, loss=spy)
    drawn: list[np.ndarray] = []
    draw = trainer.sampler.next

    def spy_batch() -> Any:
        drawn.append(draw())
        return drawn[-1]

    trainer.sampler.next = spy_batch  # type: ignore[method-assign]
    trainer.step()
    batch = trainer.data.train[drawn[0].numpy()]
    np.testing.assert_allclose(seen[0], trainer.predicted[batch])

def test_without_centres_training_is_unchanged(tiny_data: Any, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config("edpcnn", iterations=1), tmp_path / "run", data=tiny_data)
    assert trainer.predicted is None and trainer.config.centres is None
