"""Centre-free segmentation predicts with 50 star lines by default; everything else with the run's.

``lvseg.inference_options.CENTRE_FREE_N_LINES`` (:func:`lvseg.centre_free.centre_free_star`):
a run trained with fewer lines segments volumes (``lvseg predict`` without ``--center``,
``lvseg evaluate --protocol volumes``) with 50; an explicit ``--n-lines`` wins, lower values
included; a run trained with more keeps its own; the thesis protocol and ``lvseg predict
--center`` keep the run's star. The runs are the tiny runs of the conftest (trained with 12
lines) with their star set to 25 or 60 lines in ``config.json`` (the weights do not depend on
the number of lines), on ACDC-layout phantoms.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lvseg.predict
from lvseg.centre_free import RunSegmenter, centre_free_star
from lvseg.cli import main
from lvseg.inference_options import CENTRE_FREE_N_LINES, StarOverrides
from lvseg.runs import load_run
from lvseg.volumes import phantom_cine, write_phantom_patient


@pytest.fixture(scope="module")
def runs(tiny_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The tiny ``unet-dp`` run with its star set to 25 and to 60 lines, by number of lines."""
    out = {}
    for n_lines in (25, 60):
        folder = tmp_path_factory.mktemp(f"lines{n_lines}") / "run"
        folder.mkdir()
        config = json.loads((tiny_runs["unet-dp"] / "config.json").read_text())
        config["star"]["n_lines"] = n_lines
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "best.pt").write_bytes((tiny_runs["unet-dp"] / "best.pt").read_bytes())
        out[n_lines] = folder
    return out


@pytest.fixture(scope="module")
def acdc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one ACDC-layout phantom patient."""
    root = tmp_path_factory.mktemp("acdc")
    write_phantom_patient(root, "patient901", size=48, n_frames=2)
    return root


def _contour_lengths(run_dir: Path, overrides: StarOverrides = StarOverrides()) -> set[int]:
    """The numbers of points of the DP contours of a phantom volume segmented centre-free."""
    images, _, truth = phantom_cine(size=48, n_frames=1)
    segmenter = RunSegmenter(load_run(run_dir, overrides=overrides), min_area_mm2=0.0)
    radii = [r.radii for r in segmenter(images, truth.spacing) if r.radii is not None]
    assert radii, "no DP contour to count"
    return {len(r) for r in radii}


def test_a_25_line_run_segments_volumes_with_50_lines(runs: dict[int, Path]) -> None:
    """Only the number of lines changes: delta, edge offset, radius, points and the run's
    smoothing rule stay (its ``smoothing=None`` follows: 13, the odd integer nearest 50/4)."""
    assert CENTRE_FREE_N_LINES == 50
    run = load_run(runs[25])
    assert run.config.star.n_lines == 25  # the run as trained, as load_run gives it
    assert _contour_lengths(runs[25]) == {50}
    star = centre_free_star(run)
    assert star == dataclasses.replace(run.config.star, n_lines=50)
    assert (run.config.star.smoothing, run.config.star.smoothing_width, star.smoothing_width) == (
        None, 7, 13)
    assert RunSegmenter(run).star == star


@pytest.mark.parametrize(("method", "lines"), [(None, {50}), ("unet", set())])
def test_the_drawn_star_is_the_one_the_contours_have_and_none_for_unet(
        runs: dict[int, Path], method: str | None, lines: set[int]) -> None:
    """``drawn_star`` (what the records say) agrees with the contours returned: the 25-line
    run's 50-line star as ``unet-dp``, none when the same weights predict as ``unet`` (a mask)."""
    images, _, truth = phantom_cine(size=48, n_frames=1)
    segmenter = RunSegmenter(load_run(runs[25]), method=method, min_area_mm2=0.0)
    results = segmenter(images, truth.spacing)
    assert any(r.has_lv for r in results)
    assert {len(r.radii) for r in results if r.radii is not None} == lines
    if method == "unet":
        assert segmenter.drawn_star is None
    else:
        assert segmenter.drawn_star == segmenter.star and segmenter.star.n_lines == 50


@pytest.mark.parametrize("n_lines", [25, 12, 75])
def test_an_explicit_n_lines_wins_lower_values_included(runs: dict[int, Path],
                                                        n_lines: int) -> None:
    assert _contour_lengths(runs[25], StarOverrides(n_lines=n_lines)) == {n_lines}


def test_a_run_with_more_than_50_lines_keeps_its_own(runs: dict[int, Path]) -> None:
    assert _contour_lengths(runs[60]) == {60}
    assert _contour_lengths(runs[60], StarOverrides(n_lines=25)) == {25}


def test_evaluate_volumes_records_the_lines_used_and_the_thesis_protocol_keeps_the_runs(
        runs: dict[int, Path], acdc: Path, tmp_path: Path) -> None:
    """``--protocol volumes`` writes the star it used (50 lines and the moving average's width
    that follows them; 25 with ``--n-lines 25``); the thesis protocol the run's 25."""
    reports = {}
    for name, extra in (("default", []), ("n25", ["--n-lines", "25"])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(runs[25]), "--protocol", "volumes", "--data-dir", str(acdc),
                     "--split", "all", "--json", str(out), "--device", "cpu", *extra]) == 0
        reports[name] = json.loads(out.read_text())
    assert (reports["default"]["n_lines"], reports["default"]["smoothing"]) == (50, 13)
    assert (reports["n25"]["n_lines"], reports["n25"]["smoothing"]) == (25, 7)
    assert reports["default"]["delta"] == reports["n25"]["delta"] == 1
    thesis = tmp_path / "thesis.json"
    assert main(["evaluate", str(runs[25]), "--split", "all", "--json", str(thesis),
                 "--device", "cpu"]) == 0
    assert json.loads(thesis.read_text())["n_lines"] == 25


def test_predict_without_center_uses_50_lines_and_with_center_the_runs(
        runs: dict[int, Path], acdc: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's own paths: the segmenter ``lvseg predict`` builds for volumes, and the
    contour of ``lvseg predict --center`` (one point per line)."""
    lines: list[int] = []
    call = RunSegmenter.__call__

    def counting(self: RunSegmenter, *args: Any) -> Any:
        results = call(self, *args)
        lines.extend(len(r.radii) for r in results if r.radii is not None)
        return results

    monkeypatch.setattr(RunSegmenter, "__call__", counting)
    patient = acdc / "patient901"
    for extra, expected in (([], 50), (["--n-lines", "25"], 25)):
        lines.clear()
        assert main(["predict", str(runs[25]), str(patient), "--out", str(tmp_path / "vol"),
                     "--device", "cpu", *extra]) == 0
        assert lines and set(lines) == {expected}

    contours: list[int] = []
    predict_files = lvseg.predict.predict_files

    def recording(*args: Any, **kwargs: Any) -> Any:
        written = predict_files(*args, **kwargs)
        contours.extend(len(result["contour"]) for _, result in written)
        return written

    monkeypatch.setattr(lvseg.predict, "predict_files", recording)
    image = tmp_path / "slice.npy"
    np.save(image, np.random.default_rng(0).random((60, 60)).astype(np.float32))
    assert main(["predict", str(runs[25]), str(image), "--center", "30,30", "--out",
                 str(tmp_path / "slice"), "--device", "cpu"]) == 0
    assert contours == [25]
