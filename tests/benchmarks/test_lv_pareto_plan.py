"""lv_pareto's plan on Dask, with a fake run in place of training: one log, the older logs count
as finished, a variant that extends another waits for it and gets its record."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import _harness as h
from benchmarks import _schedule
from benchmarks.lv_pareto import __main__ as pareto


def fake_run(dataset: str, variant: str, seed: int, quick: bool, work: Path,
             *after: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"key": pareto.key_of(dataset, variant, seed), "dataset": dataset, "variant": variant,
            "seed": seed, "best_dice": 0.5, "after": [r["key"] for r in after]}


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan on a LocalCluster of threads, with the fake run."""
    connect = _schedule.connect
    monkeypatch.setattr(_schedule, "connect", lambda scheduler, workers: connect(
        scheduler, workers, processes=False))
    monkeypatch.setattr(pareto, "run_one", fake_run)


def test_the_plan_runs_once_and_an_extension_waits_for_its_run(tmp_path: Path, threads: None) -> None:
    args = argparse.Namespace(quick=False, out=tmp_path, scheduler=None, workers=2)
    variants = ("S2 k1 line", "S2 k1 line, 200 it")
    older = h.raw_log(tmp_path, "lv_pareto.0")  # a per-shard log from before Dask
    older.add({"key": "acdc/S2 k1 line/seed1", "dataset": "acdc", "variant": "S2 k1 line",
               "seed": 1})
    pareto.run_plan(args, ("acdc",), variants, (0, 1))
    path = tmp_path / "raw" / "lv_pareto.acdc.s2k1line-s2k1line200it.seeds0-1.jsonl"
    records = {r["key"]: r for r in map(json.loads, path.read_text().splitlines())}
    assert sorted(records) == ["acdc/S2 k1 line, 200 it/seed0", "acdc/S2 k1 line, 200 it/seed1",
                               "acdc/S2 k1 line/seed0"]  # seed 1's base run was done before
    assert records["acdc/S2 k1 line, 200 it/seed0"]["after"] == ["acdc/S2 k1 line/seed0"]
    assert records["acdc/S2 k1 line, 200 it/seed1"]["after"] == ["acdc/S2 k1 line/seed1"]
    lines = path.read_text()
    pareto.run_plan(args, ("acdc",), variants, (0, 1))  # a restart: nothing left to run
    assert path.read_text() == lines
    assert not list(tmp_path.rglob("*.claim"))


def test_an_extension_whose_run_is_not_planned_is_skipped(tmp_path: Path, threads: None,
                                                           capsys: pytest.CaptureFixture) -> None:
    args = argparse.Namespace(quick=False, out=tmp_path, scheduler=None, workers=1)
    pareto.run_plan(args, ("acdc",), ("S2 k1 line, 200 it",), (0,))
    assert "acdc/S2 k1 line, 200 it/seed0: acdc/S2 k1 line/seed0 is neither finished nor in " \
           "this plan; skipped" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.jsonl"))


def test_every_run_trains_without_augmentation_as_when_the_study_ran() -> None:
    """lvseg's default became ``--augment standard`` after this study's runs; a restart must
    train them as they were."""
    from lvseg.config import TrainConfig

    assert TrainConfig(method="edpcnn").augment == "noflip"
    for dataset, variant, seed in pareto.jobs(False) + pareto.jobs(True):
        assert pareto.config_of(variant, dataset, seed, False).augment == "none", variant
