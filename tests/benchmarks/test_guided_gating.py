"""python -m benchmarks.guided_gating on a few steps: results, goal checks, resume from the run log."""

from __future__ import annotations

import json

import pytest


def test_a_short_run_writes_results_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from benchmarks.guided_gating import __main__ as gg

    monkeypatch.setitem(gg.PLAN, 256, (("dense",), 6, ["ES S=10", "Surrogate S=10", "Gated, hysteresis 2"]))
    gg.main(["--quick", "--out", str(tmp_path)])
    lines = (tmp_path / "raw" / "guided_gating_quick.jsonl").read_text().splitlines()
    result = json.loads((tmp_path / "guided_gating_quick.json").read_text())
    assert [r[2] for r in result["table"]["rows"]] == ["ES S=10", "Surrogate S=10", "Gated, hysteresis 2"]
    assert [len(json.loads(line)["cosine"]) for line in lines] == [6, 6, 6]
    assert [g["estimator"] for g in result["goals"]] == ["Gated, hysteresis 2"]
    assert (tmp_path / "guided_gating_quick.png").exists()
    gg.main(["--quick", "--out", str(tmp_path)])  # resumes: nothing left to run
    assert (tmp_path / "raw" / "guided_gating_quick.jsonl").read_text().splitlines() == lines
