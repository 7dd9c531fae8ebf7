"""Shared helpers of the lvseg pipeline/train/CLI tests: a tiny configuration that trains in
about a second per iteration on a CPU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from lvseg.star import StarConfig
from lvseg.config import TrainConfig

#: Command-line options of a tiny synthetic run (3 patients of 8 phantoms: 8 train/val/test).
TINY_ARGS = [
    "--data", "synthetic", "--synthetic-slices", "24", "--train-size", "all",
    "--batch-size", "4", "--val-every", "2", "--checkpoint-every", "2",
    "--unet-channels", "4", "--unet-depth", "2", "--n-lines", "12", "--n-points", "24",
    "--radius", "24", "--samples", "2", "--fit-steps", "1", "--no-progress",
]  # fmt: skip


def tiny_config(method: str = "edpcnn", **overrides: Any) -> TrainConfig:
    """The :class:`TrainConfig` equivalent of ``TINY_ARGS``."""
    options: dict[str, Any] = dict(
        data="synthetic", synthetic_slices=24, train_size=None, batch_size=4, val_every=2,
        checkpoint_every=2, unet_channels=4, unet_depth=2, iterations=4, samples=2, fit_steps=1,
        star=StarConfig(n_lines=12, n_points=24, radius=24.0),
    )  # fmt: skip
    options.update(overrides)
    return TrainConfig(method=method, **options)


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run torch on one thread: with two pytest workers on two cores, more threads only spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
