"""lvseg's floors: every module imports only from its own floor or the floors below it.

The floors, from the ground up (``docs/architecture.md`` draws them). A module on floor *k* may
import lvseg modules on floors ``<= k``; imports under ``if TYPE_CHECKING:`` are types only and
are not counted. Within a floor there must be no import circle either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lvseg

ROOT = Path(lvseg.__file__).parent

#: The floors, ground first: foundations -> star settings -> model -> methods -> config -> data
#: preparation -> score -> runs -> train / evaluate / predict -> cli.
FLOORS: list[tuple[str, set[str]]] = [
    ("foundations", {"options", "device", "distributed", "interrupt", "sampler", "jitter", "augment", "surface", "metrics",
                     "rundir", "checkpoint", "data", "inference_options",
                     "train_choices"}),
    ("star settings", {"star", "star_dp"}),
    ("model", {"models", "edpcnn", "averaging"}),
    ("methods", {"methods", "teacher"}),
    ("config", {"config"}),
    ("data preparation", {"prepare", "images", "negatives"}),
    ("score", {"segment", "score", "volumes", "locate", "anchor"}),
    ("runs", {"runs", "hooks", "figures"}),
    ("train / evaluate / predict", {"train", "batch", "evaluate", "predict", "centre_free",
                                     "train_centres", "train_state"}),
    ("cli", {"cli", "cli_evaluate"}),
]
FLOOR = {name: k for k, (_, names) in enumerate(FLOORS) for name in names}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts == ("__init__",):
            continue
        out[".".join(p for p in parts if p != "__init__")] = path
    return out


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def lvseg_imports(path: Path) -> set[str]:
    """The top-level lvseg modules ``path`` imports at run time (anywhere in the file)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "lvseg" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_has_a_floor() -> None:
    tops = {name.split(".")[0] for name in _modules()}
    assert tops == set(FLOOR), f"give each lvseg module a floor: {sorted(tops ^ set(FLOOR))}"


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_go_down_the_floors(module: str) -> None:
    own = module.split(".")[0]
    for target in lvseg_imports(_modules()[module]) - {own}:
        assert FLOOR[target] <= FLOOR[own], (
            f"lvseg.{module} (floor {FLOORS[FLOOR[own]][0]!r}) imports lvseg.{target}, which sits "
            f"higher (floor {FLOORS[FLOOR[target]][0]!r})")


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        own = module.split(".")[0]
        graph.setdefault(own, set()).update(lvseg_imports(path) - {own})

    def visit(node: str, trail: list[str]) -> None:
        assert node not in trail, "import circle: " + " -> ".join([*trail, node])
        for nxt in sorted(graph[node]):
            visit(nxt, [*trail, node])

    for start in sorted(graph):
        visit(start, [])


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from lvseg.cli import main\n"
                   "def f():\n    from lvseg.train import Trainer\n")
    assert lvseg_imports(bad) == {"train"}


def test_every_module_is_exported_and_documented() -> None:
    """``lvseg.__all__`` names every top-level module, and the package docstring each one."""
    assert set(lvseg.__all__) == set(FLOOR), sorted(set(lvseg.__all__) ^ set(FLOOR))
    assert lvseg.__all__ == sorted(lvseg.__all__)
    missing = [name for name in FLOOR if f":mod:`lvseg.{name}`" not in (lvseg.__doc__ or "")]
    assert not missing, f"the lvseg docstring does not name {missing}"
