"""The doctest guards in the docs pages must not hide examples once the API exists.

Examples written against API that had not landed yet carry ``:skipif: missing("Bypass", ...)``
(see ``doctest_global_setup`` in ``docs/conf.py``). If a name were renamed later, its guard would
skip the example silently forever; this test fails instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUARD = re.compile(r':skipif:\s*missing\(([^)]*)\)')


def guarded_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if "_build" in page.parts:
            continue
        for args in GUARD.findall(page.read_text(encoding="utf-8")):
            for name in re.findall(r'"(\w+)"', args):
                names.setdefault(name, set()).add(page.relative_to(ROOT).as_posix())
    return names


def test_guards_wait_only_for_names_that_diffbypass_exports() -> None:
    diffbypass = pytest.importorskip("diffbypass")
    if not hasattr(diffbypass, "Bypass"):
        pytest.skip("diffbypass.Bypass has not landed yet; the guarded examples are skipped")
    unknown = {n: pages for n, pages in guarded_names().items() if n not in diffbypass.__all__}
    assert not unknown, f"doctest guards wait for names diffbypass does not export: {unknown}"


def test_the_guard_pattern_finds_the_guards() -> None:
    assert {"Bypass", "ES", "Surrogate"} <= set(guarded_names())
