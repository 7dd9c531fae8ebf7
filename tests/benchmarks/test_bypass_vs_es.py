"""benchmarks/bypass_vs_es: the curve arithmetic against hand-computed values, the ``--quick``
run end to end on phantoms (with its resume), and the message without ACDC."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks.bypass_vs_es import __main__ as bench
from benchmarks.bypass_vs_es._curves import at_budgets, best_curve, best_within, curve, total
from benchmarks.bypass_vs_es._outputs import mean_sd, to_best

# A made-up bypass run of 4 steps and an ES run of 8, each validated every 2 iterations.
BYPASS = {"key": "b", "step_seconds": [1.0, 2.0, 3.0, 4.0], "fn_items": [20, 20, 20, 20],
          "step_cpu_seconds": [1.0] * 4, "validations": [[2, 0.5], [4, 0.7]]}
ES = {"key": "e", "step_seconds": [0.5] * 8, "fn_items": [110] * 8,
      "step_cpu_seconds": [1.0] * 8, "validations": [[2, 0.3], [4, 0.6], [6, 0.8], [8, 0.75]]}


def test_curves_sum_the_steps_up_to_each_validation() -> None:
    assert curve(BYPASS, "seconds") == [(3.0, 0.5), (10.0, 0.7)]  # 1+2, 1+2+3+4
    assert curve(BYPASS, "evaluations") == [(40.0, 0.5), (80.0, 0.7)]
    assert curve(ES, "seconds") == [(1.0, 0.3), (2.0, 0.6), (3.0, 0.8), (4.0, 0.75)]
    assert curve(ES, "evaluations") == [(220.0, 0.3), (440.0, 0.6), (660.0, 0.8), (880.0, 0.75)]
    assert (total(BYPASS, "seconds"), total(ES, "evaluations")) == (10.0, 880.0)
    assert best_curve(curve(ES, "seconds")) == [(1.0, 0.3), (2.0, 0.6), (3.0, 0.8), (4.0, 0.8)]


def test_best_within_a_budget_counts_the_points_at_or_below_it() -> None:
    points = curve(ES, "seconds")
    assert best_within(points, 3.0) == 0.8  # a point exactly at the budget counts
    assert best_within(points, 2.99) == 0.6
    assert math.isnan(best_within(points, 0.5))  # no validation yet


def test_the_comparison_at_each_others_budget() -> None:
    got = at_budgets(BYPASS, ES)
    nan = got.pop("es_at_bypass_evaluations")
    assert math.isnan(nan)  # 80 evaluations: ES's first validation comes at 220
    assert got == {"bypass_own": 0.7, "es_own": 0.8,
                   "es_at_bypass_seconds": 0.8,  # 10 s: all of ES's 4 s run
                   "bypass_at_es_seconds": 0.5,  # 4 s: the bypass's validation at 3 s only
                   "bypass_at_es_evaluations": 0.7,  # 880: the whole bypass run (80)
                   "es_at_bypass_cpu_seconds": 0.6,  # 4 CPU s: ES up to iteration 4
                   "bypass_at_es_cpu_seconds": 0.7}  # 8 CPU s: the whole bypass run (4)


def test_a_validation_past_the_steps_is_refused() -> None:
    with pytest.raises(ValueError, match="validation at iteration 6, but the record has 4 steps"):
        curve({**BYPASS, "validations": [[6, 0.5]]}, "seconds")


def test_seconds_to_the_best_validation_take_the_first_of_ties() -> None:
    assert (to_best(BYPASS), to_best(ES)) == (10.0, 3.0)  # 0.7 at 1+2+3+4 s; 0.8 at 6 x 0.5 s
    assert to_best({**BYPASS, "validations": [[2, 0.5], [4, 0.5]]}) == 3.0


def test_mean_sd_cells() -> None:
    assert mean_sd([0.5, 0.7]) == "0.600 ± 0.141 (2)"  # sample s.d.: sqrt(0.02)
    assert mean_sd([0.5]) == "0.500 ± – (1)"
    assert mean_sd([0.5, math.nan]) == "0.500 ± – (1, 1 reached none)"
    assert mean_sd([math.nan]) == "none reached (1)"


def test_quick_run_on_phantoms_counts_the_dp_and_resumes(tmp_path: Path) -> None:
    args = ["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "runs")]
    bench.main(args)
    result = json.loads((tmp_path / "out" / "bypass_vs_es_quick.json").read_text())
    assert result["complete"] and result["runs_done"] == result["runs_planned"] == 2
    assert [r["key"] for r in result["runs"]] == ["edpcnn-s0-k4", "edpcnn-es-s0-k4"]
    assert result["counts_agree_with_blackbox_instances"]
    assert result["commits_of_runs"] and "" not in result["commits_of_runs"]  # each run's commit
    rows = {r[0]: r[1:] for r in result["table"]["rows"]}
    # per image and iteration: the forward DP plus one surrogate sample (samples=1), and the
    # forward DP plus ES's 10 samples
    assert rows["DP evaluations per image and iteration (counted)"] == ["2", "11"]
    bypass, es = result["runs"]
    assert bypass["images"] == es["images"] == [8] * 4  # --train-size 8, batch size 10
    assert (bypass["fn_items"], es["fn_items"]) == ([8 * 2] * 4, [8 * 11] * 4)
    assert rows["iterations"] == ["4 ± – (1)", "4 ± – (1)"]
    for run in result["runs"]:
        assert len(run["step_seconds"]) == 4 and [v[0] for v in run["validations"]] == [2, 4]
    assert (tmp_path / "out" / "bypass_vs_es_quick.png").stat().st_size > 0
    raw = (tmp_path / "out" / "raw" / "bypass_vs_es_quick.jsonl").read_text()
    assert all((tmp_path / "runs" / "bypass_vs_es_quick" / k / "done").is_file()
               for k in ("edpcnn-s0-k4", "edpcnn-es-s0-k4"))
    bench.main(args)  # a restart trains nothing and appends nothing
    assert (tmp_path / "out" / "raw" / "bypass_vs_es_quick.jsonl").read_text() == raw


def test_without_acdc_the_message_names_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as stop:
        bench.main(["--data-dir", str(missing), "--out", str(tmp_path / "out"),
                    "--work", str(tmp_path / "runs")])
    message = str(stop.value)
    assert f"ACDC not found at {missing / 'training'}" in message
    assert "--quick runs on phantoms" in message and not (tmp_path / "runs").exists()


def test_longer_runs_need_a_positive_number_of_iterations(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--longer", "0"])
    assert "--longer must be an integer >= 1 (iterations); got 0" in capsys.readouterr().err


def test_the_plan_interleaves_the_methods_and_puts_the_longer_runs_last() -> None:
    keys = [r.key for r in bench.plan((0, 1), None, 600)]
    assert keys == ["edpcnn-s0-kdefault", "edpcnn-es-s0-kdefault", "edpcnn-s1-kdefault",
                    "edpcnn-es-s1-kdefault", "edpcnn-s0-k600", "edpcnn-es-s0-k600",
                    "edpcnn-s1-k600", "edpcnn-es-s1-k600"]
