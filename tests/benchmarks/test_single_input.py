"""python -m benchmarks.single_input: the bit-identity check, the guard on which tree a timing
process imports, and the quick run's result file (this checkout against itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.single_input import __main__ as bench

ROOT = Path(__file__).resolve().parents[2]


def test_identical_needs_every_tensor_equal_bit_for_bit_and_in_dtype(tmp_path: Path) -> None:
    x = torch.linspace(-1, 1, 7)
    ulp = torch.nextafter(x[3], torch.tensor(2.0))
    moved = x.clone()
    moved[3] = ulp
    torch.save({"a": [x, x], "b": [x], "c": [x], "d": [x]}, tmp_path / "old.pt")
    torch.save({"a": [x.clone(), x.clone()], "b": [moved], "c": [x.double()]}, tmp_path / "new.pt")
    assert bench.identical(tmp_path / "old.pt", tmp_path / "new.pt") == {
        "a": True, "b": False, "c": False, "d": False}


def test_a_timing_process_refuses_a_tree_its_diffbypass_does_not_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match="failed"):  # an empty tree: diffbypass comes from
        bench.timing(tmp_path, tmp_path / "g.pt", quick=True)  # an install, or from nowhere
    err = capsys.readouterr().err
    assert f"not {tmp_path}" in err or "No module named 'diffbypass'" in err, err


def test_quick_run_against_itself_is_bit_identical(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    bench.main(["--quick", "--out", str(tmp_path), "--base-tree", str(ROOT)])
    result = json.loads((tmp_path / "single_input_quick.json").read_text())
    cases = [(r[0], r[1]) for r in result["table"]["rows"]]
    estimators = ["Surrogate", "ES", "Perturbed", "GuidedES", "FiniteDifference",
                  "StraightThrough", "DBB"]
    assert cases == [(e, "elementwise") for e in estimators] + [
        (e, "star") for e in estimators if e != "FiniteDifference"]
    assert all(r[-1] == "yes" for r in result["table"]["rows"])
    summary = result["summary"]["ES/star"]
    assert summary["ratio_cpu"]["n"] == 1 and summary["old_cpu_ms"] > 0
    assert result["rounds"][0]["order"] == ["old", "new"]
    assert (tmp_path / "single_input_quick.png").stat().st_size > 0
