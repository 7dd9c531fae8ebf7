"""The architecture page's module trees are generated from the code and cover every package."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "ext"))

import moduletree  # noqa: E402

PACKAGES = ("diffbypass", "plugins/stardp/diffbypass_stardp", "examples/lv_segmentation/lvseg")
PAGE = ROOT / "docs" / "architecture.md"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_is_in_the_generated_tree_with_its_docstring(package):
    tree = moduletree.module_tree(package)
    folder = ROOT / package
    for path in folder.rglob("*.py"):
        if path.name == "__init__.py" or "__pycache__" in path.parts:
            continue
        assert moduletree.summary(path), f"{path.relative_to(ROOT)} has no module docstring"
        assert re.search(rf"^\s*{re.escape(path.name)}\s", tree, re.M), path.name


def test_the_page_uses_the_directive_for_every_package_and_lists_no_module_by_hand():
    text = PAGE.read_text(encoding="utf-8")
    for package in PACKAGES:
        assert f"```{{module-tree}} {package}\n```" in text, package
    hand_written = re.findall(r"^\s+[a-z_]+\.py\s{2,}\S", text, re.M)
    assert not hand_written, f"hand-written module lines on the page: {hand_written}"


def test_a_folder_that_is_not_a_package_is_refused_by_name():
    with pytest.raises(ValueError, match="'docs' is not a package folder"):
        moduletree.module_tree("docs")
