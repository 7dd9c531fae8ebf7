"""Shared fixtures of the lvseg tests: the bundled sample, a small copy of it, the tiny synthetic
data the training tests share, tiny trained runs, one torch thread, and segment_volume on a
given ED/ES pair."""

from __future__ import annotations

import shutil
from typing import Any
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from lvseg.data import Slice, bundled_sunnybrook, load_sunnybrook
from lvseg_testing import TINY_ARGS, tiny_config


@pytest.fixture(scope="session")
def sunnybrook() -> tuple[list[Slice], object]:
    """The bundled sample, loaded once per test process."""
    return load_sunnybrook()


@pytest.fixture()
def small_sunnybrook(tmp_path: Path) -> Path:
    """A writable two-patient copy of the sample with 3 annotated images each."""
    src = bundled_sunnybrook()
    dst = tmp_path / "sunnybrook"
    (dst / "dicoms").mkdir(parents=True)
    lines = ["patient_id,original_id"]
    for patient, original in (("SCD0000101", "SC-HF-I-1"), ("SCD0000201", "SC-HF-I-2")):
        lines.append(f"{patient},{original}")
        (dst / "dicoms" / patient).mkdir()
        contours = dst / "contourfiles" / original / "i-contours"
        contours.mkdir(parents=True)
        names = sorted((src / "contourfiles" / original / "i-contours").iterdir())[:3]
        for contour in names:
            number = int(contour.name.split("-")[2])
            shutil.copy(contour, contours / contour.name)
            shutil.copy(src / "dicoms" / patient / f"{number}.dcm",
                        dst / "dicoms" / patient / f"{number}.dcm")
    (dst / "link.csv").write_text("\n".join(lines) + "\n")
    return dst


@pytest.fixture(scope="session")
def tiny_data():  # type: ignore[no-untyped-def]
    """The prepared data of :func:`lvseg_testing.tiny_config`, made once per test process."""
    from lvseg.prepare import prepare_data

    return prepare_data(tiny_config())


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run torch on one thread: with two pytest workers on two cores, more threads only spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, tiny_data: Any) -> dict[str, Path]:
    """One tiny run (2 iterations) of every method, trained once; tests only read them."""
    from lvseg.train import Trainer

    root = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("unet", "unet-dp", "edpcnn", "edpcnn-es"):
        out[method] = root / method
        Trainer(tiny_config(method, iterations=2), out[method], data=tiny_data).fit()
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory trained by the command, ``lvseg train --method edpcnn --iterations 2``
    on the tiny data, once per test module (a module may define its own ``run``)."""
    from lvseg.cli import main

    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--method", "edpcnn", "--iterations", "2", *TINY_ARGS,
                 "--out", str(out)]) == 0
    return out


@pytest.fixture()
def unet_run(tiny_runs: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the trained unet run that a test may change."""
    return Path(shutil.copytree(tiny_runs["unet"], tmp_path / "run"))


@pytest.fixture()
def segment_ed_es() -> Callable[..., tuple[Any, Any]]:
    """``plain, checked = segment_ed_es(results, spacing)``: segment a two-frame volume (ED
    frame 1, ES frame 12) whose segmenter returns ``results``, without and with the checks
    across ED and ES (``segment_volume(..., ed=0, es=1)``), asserting that the checks change
    neither a mask nor a volume (they only warn).

    ``results`` holds the :class:`~lvseg.volumes.SliceResult` of each ED slice then each ES
    slice, or is masks ``(2, Z, H, W)``: a slice has LV where its mask has a pixel.
    """
    from lvseg.volumes import SliceResult, Volume, segment_volume

    def run(results: np.ndarray | Sequence[Any], spacing: tuple[float, float, float]
            ) -> tuple[Any, Any]:
        if isinstance(results, np.ndarray):
            slices = results.reshape(-1, *results.shape[2:])
            results = [SliceResult(m, bool(m.any())) for m in slices]
        masks = np.stack([r.mask for r in results])
        masks = masks.reshape(2, len(results) // 2, *masks.shape[1:])
        volume = Volume(np.zeros(masks.shape), spacing, "pair", frames=[1, 12])

        def segment(images: np.ndarray, spacing: tuple[float, float, float]) -> list[Any]:
            return list(results)

        plain = segment_volume(volume, segment)
        checked = segment_volume(volume, segment, ed=0, es=1)
        np.testing.assert_array_equal(checked.masks, masks)  # a warning only
        np.testing.assert_array_equal(checked.volumes_ml, plain.volumes_ml)
        return plain, checked

    return run
