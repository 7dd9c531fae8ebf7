"""python -m benchmarks.lv_smoothness --quick: the study's code path (plan, fixed and learned
lambda, best-checkpoint evaluation, table, skipping finished runs) on phantoms."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.lv_smoothness import __main__ as bench


def test_plan_order_puts_the_informative_runs_first() -> None:
    keys = [j.key for j in bench.jobs_of(bench.FULL)]
    assert keys[:2] == ["n=10/seed=0/lam=0", "n=10/seed=0/learned"]
    assert keys.index("n=10/seed=2/learned") < keys.index(f"n=10/seed=0/lam={bench.FULL.fixed[0]:g}")
    assert max(i for i, k in enumerate(keys) if k.startswith("n=10/")) < keys.index("n=50/seed=0/lam=0")
    assert len(keys) == len(set(keys)) == 2 * 3 * (2 + len(bench.FULL.fixed))


def test_quick_run_writes_the_table_and_skips_finished_runs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    args = ["--quick", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "runs"),
            "--workers", "1"]
    bench.main(args)
    result = json.loads((tmp_path / "out" / "lv_smoothness_quick.json").read_text())
    rows = result["summary"]["8"]["rows"]
    assert set(rows) == {"lam=0", "learned", "lam=0.3"}
    learned = next(r for r in result["records"] if r["learned"])
    assert learned["lam"] > 0 and learned["lam"] != 0.1  # it moved from its start
    assert [c["smoothness"] for c in learned["curve"]][-1] > 0
    assert all(0 <= r["best_val_dice"] <= 1 for r in result["records"])
    assert result["finished"] == result["planned"] == 3
    log = tmp_path / "out" / "raw" / "lv_smoothness_quick.jsonl"
    before = log.read_text()
    bench.main(args)  # everything finished: nothing runs again
    assert log.read_text() == before


def test_without_acdc_the_study_says_where_it_looked(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(SystemExit, match="ACDC not found at .*--quick runs on phantoms"):
        bench.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])


def test_every_run_trains_without_augmentation_as_when_the_study_ran(tmp_path: Path) -> None:
    """lvseg's default became ``--augment standard`` after this study's runs; a restart must
    train (and resume) them as they were."""
    from lvseg.config import TrainConfig

    assert TrainConfig(method="edpcnn").augment == "noflip"
    for plan in (bench.FULL, bench.QUICK):
        augment = {bench.config_of(j, plan, tmp_path).augment for j in bench.jobs_of(plan)}
        assert augment == {"none"}


def test_the_scale_probe_trains_the_iterations_its_results_record(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """edpcnn's default became 500 iterations after the probe ran at 150; a missing probe is
    trained again as the committed results describe it."""
    import pytest

    import lvseg.prepare
    from benchmarks.lv_smoothness import _scale
    from lvseg.config import TrainConfig

    seen = []

    def stop(config):  # type: ignore[no-untyped-def]
        seen.append(config)
        raise RuntimeError("stop before the data")

    monkeypatch.setattr(lvseg.prepare, "prepare_data", stop)
    with pytest.raises(RuntimeError, match="stop before the data"):
        _scale.scale(tmp_path, tmp_path / "work", tmp_path / "out")
    results = Path(_scale.__file__).parent / "results" / "lv_smoothness_scale.json"
    recorded = json.loads(results.read_text())["probe_run"]["iterations"]
    assert seen[0].iterations == _scale.PROBE_ITERATIONS == recorded == 150
    assert TrainConfig(method="edpcnn").iterations == 1000  # not the default any more
