"""The benchmark result-file convention (``docs/benchmarks.md``) and its renderer."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from docutils import nodes

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "ext"))

from benchjson import ConventionError, format_cell, read_result, table_node  # noqa: E402

GOOD = {
    "method": "Median of 5 repeats.",
    "table": {"columns": ["box", "cosine"], "rows": [["sign", 0.912345], ["rank", None]]},
}


def test_cells_are_formatted_for_reading() -> None:
    cells = [format_cell(v) for v in ("ES", 0.912345, 12345.678, 7, True, None, float("nan"))]
    assert cells == ["ES", "0.9123", "1.235e+04", "7", "yes", "–", "nan"]


def test_a_good_result_renders_one_table_row_per_row() -> None:
    result = read_result(json.dumps({**GOOD, "raw": [1, 2, 3]}))
    assert result["columns"] == ["box", "cosine"] and result["raw"] == [1, 2, 3]
    table = table_node(result["columns"], result["rows"], "Title")
    rows = [[entry.astext() for entry in row.children] for row in table.findall(nodes.row)]
    assert rows == [["box", "cosine"], ["sign", "0.9123"], ["rank", "–"]]
    assert table.next_node(nodes.title).astext() == "Title"
    assert table.next_node(nodes.thead).astext() == table.next_node(nodes.row).astext()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": None}, 'needs a "table" object with "columns" and "rows"'),
        ({"table": {"columns": [], "rows": []}}, '"table.columns" must be a non-empty list'),
        ({"table": {"columns": ["a"], "rows": [1]}}, '"table.rows" must be a list of lists'),
        (
            {"table": {"columns": ["a", "b"], "rows": [["x"]]}},
            '"table.rows[0]" has 1 cells; expected 2 (one per column)',
        ),
        ({"method": " "}, 'needs a non-empty "method" text'),
    ],
)
def test_a_result_that_breaks_the_convention_says_what_is_wrong(change: dict, message: str) -> None:
    data = {**GOOD, **change}
    with pytest.raises(ConventionError, match=re.escape(message)):
        read_result(json.dumps({k: v for k, v in data.items() if v is not None}))


def test_not_json_at_all() -> None:
    with pytest.raises(ConventionError, match="not valid JSON"):
        read_result("{table:")
    with pytest.raises(ConventionError, match="the top level must be an object; got list"):
        read_result("[]")


def test_the_example_in_the_docs_follows_the_convention() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    examples = re.findall(r"```json\n(.*?)\n```", page, flags=re.S)
    assert examples, "docs/benchmarks.md should show an example result file"
    for example in examples:
        read_result(example)


RESULTS = sorted((ROOT / "benchmarks").glob("*/results/*.json"))


@pytest.mark.parametrize("path", RESULTS or [None], ids=lambda p: p.name if p else "none")
def test_written_results_follow_the_convention(path: Path | None) -> None:
    if path is None:
        pytest.skip("no benchmark has written results yet (make bench)")
    read_result(path.read_text(encoding="utf-8"))


def test_the_registry_table_lists_every_study() -> None:
    from benchjson import registry_rows

    columns, rows = registry_rows(ROOT / "benchmarks" / "registry.py")
    names = sorted(p.parent.name for p in (ROOT / "benchmarks").glob("*/__main__.py"))
    assert columns[0] == "study" and sorted(r[0] for r in rows) == names
    assert all(r[2].startswith(f"python -m benchmarks.{r[0]}") for r in rows)


def test_the_site_copies_code_without_prompts_and_keeps_double_hyphens() -> None:
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    assert '"sphinx_copybutton"' in conf and "copybutton_prompt_text" in conf
    assert 'smartquotes_action = "qe"' in conf  # no "d": "--quick" is not turned into a dash
