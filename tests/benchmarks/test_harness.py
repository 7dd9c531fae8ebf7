"""The shared benchmark harness (benchmarks/_harness.py): statistics, result files, resumable runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "ext"))

from benchmarks import _harness as h  # noqa: E402
from benchjson import read_result  # noqa: E402


def test_summary_is_median_quartiles_and_raw_values() -> None:
    s = h.summary([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (s["median"], s["q25"], s["q75"], s["n"]) == (3.0, 2.0, 4.0, 5)
    assert s["values"] == [4.0, 1.0, 3.0, 2.0, 5.0]


def test_time_calls_warms_up_then_times_each_repeat() -> None:
    calls = []
    seconds = h.time_calls(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(seconds) == 3 and len(calls) == 5 and all(s >= 0 for s in seconds)
    order = []
    out = h.time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, 2)
    assert order == ["a", "b"] * 3 and [len(v) for v in out.values()] == [2, 2]


def test_a_result_file_follows_the_docs_convention(tmp_path: Path, capsys) -> None:
    data = {"method": "Median of 5.", "table": {"columns": ["x", "y"], "rows": [["a", 0.123456]]},
            "machine": h.machine_info(load_average_start_end=str(h.Load()))}  # fmt: skip
    h.write_result(tmp_path / "r.json", data)
    assert read_result((tmp_path / "r.json").read_text())["rows"] == [["a", 0.123456]]
    assert "0.1235" in capsys.readouterr().err  # the printed table
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="needs a 'method' entry"):
        h.write_result(tmp_path / "bad.json", {"table": data["table"]})


def test_a_restarted_study_skips_the_finished_runs(tmp_path: Path) -> None:
    log = h.RunLog(tmp_path / "runs.jsonl")
    log.add({"key": "a", "value": 1})
    log.add({"key": "b", "value": 2})
    again = h.RunLog(tmp_path / "runs.jsonl")
    assert again.done == {"a", "b"} and again.records[1]["value"] == 2
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]


def test_the_method_text_is_the_docstrings_method_section() -> None:
    doc = "Title.\n\nMethod\n------\nWarm-up, ``repeats``.\n\nRun ``python x.py``.\n"
    assert h.method_text(doc) == "Warm-up, `repeats`."


def test_a_quick_run_has_its_own_result_file_and_replot_redraws_from_the_json(
    tmp_path: Path,
) -> None:
    full, quick = h.result_file(tmp_path, "study", False), h.result_file(tmp_path, "study", True)
    assert (full, quick) == (tmp_path / "study.json", tmp_path / "study_quick.json")
    h.atomic_write(quick, json.dumps({"value": 7}))
    drawn: list[tuple[dict, Path]] = []
    assert not h.replot(False, quick, lambda data, png: drawn.append((data, png)))
    assert drawn == []
    assert h.replot(True, quick, lambda data, png: drawn.append((data, png)))
    assert drawn == [({"value": 7}, tmp_path / "study_quick.png")]


@pytest.mark.parametrize("study", ["single_input", "lv_cli_overhead"])
def test_a_study_replots_its_own_quick_result(study: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``--replot --quick`` reads ``<study>_quick.json`` from ``--out`` and measures nothing."""
    import importlib

    module = importlib.import_module(f"benchmarks.{study}.__main__")
    drawn: list[tuple[dict, Path]] = []
    monkeypatch.setattr(module, "plot", lambda data, png: drawn.append((data, png)))
    monkeypatch.setattr(module, "measure", lambda *a, **k: pytest.fail("measured"))
    h.atomic_write(tmp_path / f"{study}_quick.json", json.dumps({"rows": 1}))
    module.main(["--quick", "--replot", "--out", str(tmp_path)])
    assert drawn == [({"rows": 1}, tmp_path / f"{study}_quick.png")]


def test_a_child_runs_on_the_threads_asked_with_this_checkouts_packages_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import _lv_runs

    assert h.thread_env(3) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3",
                               "NUMBA_NUM_THREADS": "3", "OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = _lv_runs.child_env()
    assert [env[k] for k in h.THREAD_VARIABLES] == ["1"] * 3
    assert h.THREAD_VARIABLES == ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    assert env["PYTHONPATH"].split(":") == [str(h.REPO), str(h.REPO / "plugins" / "stardp"),
                                            str(h.REPO / "examples" / "lv_segmentation"),
                                            "/elsewhere"]
    assert _lv_runs.child_env(2)["NUMBA_NUM_THREADS"] == "2"
