"""Smoke test of python -m benchmarks.shortest_path --quick (skipped without pyepo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_results_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("pyepo")
    pytest.importorskip("matplotlib")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.shortest_path import __main__ as sp

    args = ["--quick", "--methods", "SPO+", "DBB", "StraightThrough(-1)", "--out", str(tmp_path)]
    sp.main(args)
    lines = (tmp_path / "raw" / "shortest_path_quick.jsonl").read_text().splitlines()
    result = json.loads((tmp_path / "shortest_path_quick.json").read_text())
    assert [r[0] for r in result["table"]["rows"]] == ["SPO+", "DBB", "StraightThrough(-1)"]
    assert {json.loads(line)["method"] for line in lines} == {"SPO+", "DBB", "StraightThrough(-1)"}
    by = {json.loads(line)["method"]: json.loads(line) for line in lines}
    assert by["DBB"]["calls_per_instance"] == 2.0 and by["SPO+"]["calls_per_instance"] == 1.0
    assert (tmp_path / "shortest_path_quick.png").exists()
    sp.main(args)  # resumes: every run is already finished
    assert (tmp_path / "raw" / "shortest_path_quick.jsonl").read_text().splitlines() == lines
