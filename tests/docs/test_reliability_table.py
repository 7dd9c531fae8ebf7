"""Every test that docs/reliability.md names exists, so the fault table cannot point at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reliability.md"
NODE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def node_ids() -> list[tuple[str, str | None]]:
    return sorted(set(NODE.findall(PAGE.read_text(encoding="utf-8"))), key=str)


def test_the_page_names_tests() -> None:
    assert len(node_ids()) > 20


@pytest.mark.parametrize("path,name", node_ids(), ids=lambda v: v or "")
def test_each_named_test_exists(path: str, name: str) -> None:
    source = ROOT / path
    assert source.is_file(), f"docs/reliability.md names {path}, which does not exist"
    if name:
        assert re.search(rf"^\s*def {name}\(", source.read_text(encoding="utf-8"), re.M), (
            f"docs/reliability.md names {path}::{name}, which is not a test there"
        )
