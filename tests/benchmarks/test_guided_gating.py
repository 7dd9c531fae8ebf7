"""benchmarks/guided_gating.py on a few steps: results, goal checks, resume from the run log."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_a_short_run_writes_results_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(BENCH))
    gg = importlib.import_module("guided_gating")
    monkeypatch.setitem(gg.PLAN, 256, (("dense",), 6, ["ES S=10", "Surrogate S=10", "Gated, hysteresis 2"]))
    gg.main(["--quick", "--out", str(tmp_path)])
    lines = (tmp_path / "guided_gating_quick.jsonl").read_text().splitlines()
    result = json.loads((tmp_path / "guided_gating_quick.json").read_text())
    assert [r[2] for r in result["table"]["rows"]] == ["ES S=10", "Surrogate S=10", "Gated, hysteresis 2"]
    assert [len(json.loads(line)["cosine"]) for line in lines] == [6, 6, 6]
    assert [g["estimator"] for g in result["goals"]] == ["Gated, hysteresis 2"]
    assert (tmp_path / "guided_gating_quick.png").exists()
    gg.main(["--quick", "--out", str(tmp_path)])  # resumes: nothing left to run
    assert (tmp_path / "guided_gating_quick.jsonl").read_text().splitlines() == lines
    sys.modules.pop("guided_gating", None)
