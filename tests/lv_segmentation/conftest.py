"""Shared fixtures of the lvseg data-layer and metrics tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lvseg.data import Slice, bundled_sunnybrook, load_sunnybrook


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
