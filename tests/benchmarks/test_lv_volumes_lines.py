"""benchmarks/lv_volumes' ``evaluate``: centre-free segmentation's star lines, as used, in the JSON.

A 25-line run (an oracle "U-Net" that marks the brightest pixels, on an ACDC-layout phantom)
segments with 50 lines by default (``lvseg.inference_options.CENTRE_FREE_N_LINES``) and with 25
given ``--n-lines 25``; the record's ``"n_lines"`` is the number the contours have: null for a
``unet`` run (its mask, no star), an ``edpcnn`` run's lines. The command's ``--no-speed`` skips
the speed measurement, and ``lv_volumes.slices`` records its lines.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import lvseg.centre_free
import lvseg.runs
from benchmarks.lv_volumes.__main__ import evaluate
from lvseg.config import TrainConfig
from lvseg.edpcnn import EDPCNN
from lvseg.inference_options import StarOverrides
from lvseg.runs import LoadedRun
from lvseg.volumes import write_phantom_patient


class Bright(torch.nn.Module):
    """Logit > 0 on the brightest 15 % of each input's intensity range."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x.amax(dim=(-2, -1), keepdim=True), x.amin(dim=(-2, -1), keepdim=True)
        return x - (hi - 0.15 * (hi - lo))


def _oracle_run(run_dir: Any, checkpoint: str = "best", *, device: str = "cpu",
                overrides: StarOverrides = StarOverrides()) -> LoadedRun:
    """What ``load_run`` gives for a ``unet-dp`` run of the default 25-line star."""
    config = TrainConfig(method="unet-dp")
    config = dataclasses.replace(config, star=dataclasses.replace(config.star,
                                                                  **overrides.given()))
    return LoadedRun(config, Bright(), "oracle", 0, overrides)


def _loader(method: str) -> Any:
    """``load_run`` giving a ``method`` run of the oracle for ``"RUN"`` (an ``edpcnn`` one
    through the relaxed DP), and the ``unet-dp`` oracle for any other folder (the locator)."""
    def load(run_dir: Any, checkpoint: str = "best", *, device: str = "cpu",
             overrides: StarOverrides = StarOverrides()) -> LoadedRun:
        run = _oracle_run(run_dir, checkpoint, device=device, overrides=overrides)
        if run_dir != "RUN":
            return run
        config = dataclasses.replace(run.config, method=method)
        model = (EDPCNN(Bright(), config.star, None, temperature=1.0)
                 if method == "edpcnn" else run.model)
        return dataclasses.replace(run, config=config, model=model)
    return load


def _counting_lines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of star lines of each contour the segmenter returns, from now on."""
    lines: list[int] = []
    call = lvseg.centre_free.RunSegmenter.__call__

    def counting(self: Any, *args: Any) -> Any:
        results = call(self, *args)
        lines.extend(len(r.radii) for r in results if r.radii is not None)
        return results

    monkeypatch.setattr(lvseg.centre_free.RunSegmenter, "__call__", counting)
    return lines


@pytest.mark.parametrize(("n_lines", "expected"), [(None, 50), (25, 25)])
def test_evaluate_records_the_lines_the_contours_have(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_lines: int | None,
        expected: int) -> None:
    monkeypatch.setattr(lvseg.runs, "load_run", _oracle_run)
    patient = write_phantom_patient(tmp_path, "patient901", size=64, n_frames=2, cine=False)
    lines = _counting_lines(monkeypatch)
    record = evaluate("oracle", "RUN", None, [patient], n_lines)
    assert lines and set(lines) == {expected}
    assert record["n_lines"] == expected


@pytest.mark.parametrize(("method", "expected"), [("unet", None), ("edpcnn", 50)])
def test_a_unet_run_records_no_lines_and_an_edpcnn_run_its_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str,
        expected: int | None) -> None:
    monkeypatch.setattr(lvseg.runs, "load_run", _loader(method))
    patient = write_phantom_patient(tmp_path, "patient901", size=64, n_frames=2, cine=False)
    lines = _counting_lines(monkeypatch)
    record = evaluate(method, "RUN", "LOCATOR", [patient])
    assert record["method"] == method
    assert set(lines) == (set() if expected is None else {expected})  # the contours' lines
    assert record["n_lines"] == expected


def _oracle_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ACDC-layout folder of one phantom patient; ``load_run`` gives the oracle run."""
    monkeypatch.setattr(lvseg.runs, "load_run", _oracle_run)
    data = tmp_path / "training"
    write_phantom_patient(data, "patient905", size=64, n_frames=2, cine=False)
    return data


@pytest.mark.parametrize(("flags", "measured"), [([], True), (["--no-speed"], False)])
def test_no_speed_skips_the_speed_measurement(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str],
        measured: bool) -> None:
    import benchmarks.lv_volumes.__main__ as bench

    data = _oracle_folder(tmp_path, monkeypatch)
    calls: list[str] = []

    def fake_speed(run_dir: str, *args: Any) -> dict[str, Any]:
        calls.append(run_dir)
        return {"table": {"columns": ["stage"], "rows": [["total"]]}}

    monkeypatch.setattr(bench, "speed", fake_speed)
    monkeypatch.setattr(sys, "argv", ["lv_volumes", "--run", "oracle=RUN", "--data-dir",
                                      str(data), "--out", str(tmp_path), "--stem", "x", *flags])
    bench.main()
    record = json.loads((tmp_path / "x.json").read_text())
    assert calls == (["RUN"] if measured else [])
    assert (record["speed"] is not None) is measured
    assert record["runs"][0]["n_lines"] == 50


@pytest.mark.parametrize(("method", "flags", "expected"), [
    ("unet-dp", [], 50), ("unet-dp", ["--n-lines", "25"], 25), ("unet", [], None)])
def test_the_slice_analysis_records_its_lines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, flags: list[str],
        expected: int | None) -> None:
    import benchmarks.lv_volumes.slices as slices

    data = _oracle_folder(tmp_path, monkeypatch)
    monkeypatch.setattr(lvseg.runs, "load_run", _loader(method))
    out = tmp_path / "slices.json"
    monkeypatch.setattr(sys, "argv", ["slices", "RUN", "--data-dir", str(data), "--json",
                                      str(out), *flags])
    slices.main()
    assert json.loads(out.read_text())["n_lines"] == expected


def test_the_benchmarks_take_the_thesis_validation_patients_with_their_info(
        tmp_path: Path) -> None:
    from benchmarks.lv_volumes.__main__ import validation_patients

    for n in range(1, 101):
        (tmp_path / f"patient{n:03d}").mkdir()
        if n != 15:  # no Info.cfg: no ED/ES frames, not scored
            (tmp_path / f"patient{n:03d}" / "Info.cfg").write_text("ED: 1\nES: 2\n")
    (tmp_path / "notes").mkdir()  # not a patient folder
    (tmp_path / "notes" / "Info.cfg").write_text("")
    expected = [tmp_path / f"patient{n:03d}" for n in (5, 10, 20, 25, 30, 35, 40, 45, 50, 55,
                                                        60, 65, 70, 75, 80, 85, 90, 95, 100)]
    assert validation_patients(tmp_path) == expected
