"""The registry of studies (benchmarks/registry.py) against the folders, the index README, the
Makefile and the result files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import _harness as h
from benchmarks import registry
from benchmarks.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"[a-z0-9_.-]+")


def test_every_study_folder_is_registered_and_every_registered_study_exists() -> None:
    folders = registry.study_folders()
    names = [s.name for s in registry.STUDIES]
    assert len(names) == len(set(names)), "a study is registered twice"
    assert sorted(names) == folders, (
        f"unregistered folders: {sorted(set(folders) - set(names))}; "
        f"registered without a folder: {sorted(set(names) - set(folders))}")
    for name in names:
        assert (ROOT / "benchmarks" / name / "README.md").is_file(), f"{name} has no README.md"


def test_study_folders_are_found_from_their_main_module(tmp_path: Path) -> None:
    (tmp_path / "b" / "__main__.py").parent.mkdir()
    (tmp_path / "b" / "__main__.py").write_text("")
    (tmp_path / "results").mkdir()  # a folder without __main__.py is no study
    assert registry.study_folders(tmp_path) == ["b"]


def test_the_index_readme_shows_the_registry() -> None:
    readme = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    table = readme.split("<!-- registry:start -->\n")[1].split("<!-- registry:end -->")[0]
    assert table == registry.markdown_table(), (
        "benchmarks/README.md's table is stale: paste registry.markdown_table() between the "
        "registry markers")


def test_make_bench_runs_the_registry() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nbench:", 1)[1].split("\n\n", 1)[0]
    assert "-m benchmarks run-all" in recipe and "benchmarks/" not in recipe.replace(
        "benchmarks/registry.py", "")


def test_result_file_names_use_plain_characters() -> None:
    files = [p for p in (ROOT / "benchmarks").glob("*/results/**/*") if p.is_file()]
    assert files, "no committed result files found"
    bad = [str(p.relative_to(ROOT)) for p in files if not NAME.fullmatch(p.name)]
    assert not bad, f"result names may use only [a-z0-9_.-] (variant and seed go inside): {bad}"
    stray = list((ROOT / "benchmarks").glob("results/*"))
    assert not stray, f"results belong in benchmarks/<study>/results/: {stray}"


def test_a_run_log_name_outside_the_rule_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"only \[a-z0-9_.-\]; got 'lv_pareto.S10\(old\)'"):
        h.raw_log(tmp_path, "lv_pareto.S10(old)")
    log = h.raw_log(tmp_path, "lv_pareto.acdc.0")
    log.add({"key": "a", "variant": "S1 k1 star", "seed": 3})
    assert (tmp_path / "raw" / "lv_pareto.acdc.0.jsonl").is_file()


def test_raw_run_logs_name_their_variant_and_seed() -> None:
    import json

    for path in (ROOT / "benchmarks").glob("*/results/raw/*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            assert "seed" in record and ({"variant", "method", "trained_method", "estimator"} & set(record)), path


def test_the_studies_default_to_their_own_result_folder() -> None:
    from benchmarks.guided_gating import __main__ as gg

    assert h.results_of(gg.__file__) == ROOT / "benchmarks" / "guided_gating" / "results"


def test_list_prints_every_study(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == [s.name for s in registry.STUDIES]
