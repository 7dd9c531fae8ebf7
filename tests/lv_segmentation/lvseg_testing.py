"""Shared helpers of the lvseg pipeline/train/CLI tests: a tiny configuration that trains in
about a second per iteration on a CPU (the fixtures built on it are in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
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


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``lvseg: error: ...`` line on stderr (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lvseg: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def disc(shape: tuple[int, int] = (100, 120)) -> np.ndarray:
    """A bright disc of radius 15 around pixel (x, y) = (60, 50): an image to predict on."""
    image = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image[(xx - 60) ** 2 + (yy - 50) ** 2 < 15**2] = 1.0
    return image


def same(a: object, b: object) -> bool:
    """Exact equality of nested state (tensors, dicts, lists, numbers)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return a == b


def edit_dicom(path: Path, **fields: object) -> Path:
    """Set DICOM ``fields`` (``PixelSpacing=[0, 1]``, ...) in the file ``path``, in place."""
    import pydicom

    ds = pydicom.dcmread(path)
    for name, value in fields.items():
        setattr(ds, name, value)
    ds.save_as(path)
    return path
