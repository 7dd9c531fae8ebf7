"""The ``module-tree`` directive: a package's module tree, generated from the code.

``docs/architecture.md`` shows the layout of each package with this directive instead of a
hand-written tree, so the page cannot drift from the code: every module (private ones too) is
listed with the first line of its docstring, read with :mod:`ast` (nothing is imported)::

    ```{module-tree} diffbypass
    ```

The argument is a folder relative to the repository root. ``tests/docs/test_module_tree.py``
checks that every module has a docstring and that the page uses the directive for each package.
"""

from __future__ import annotations

import ast
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 34  # column where the summaries start


def summary(path: Path) -> str:
    """The first line of a module's docstring ('' when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return doc.strip().splitlines()[0].strip() if doc else ""


def tree_lines(folder: Path, indent: int = 0) -> list[str]:
    """``name  summary`` lines for the modules of ``folder`` and its sub-packages, sorted."""
    lines = []
    pad = "  " * indent
    for path in sorted(folder.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            lines.append(f"{pad}{path.name}/".ljust(WIDTH) + summary(path / "__init__.py"))
            lines.extend(tree_lines(path, indent + 1))
        elif path.suffix == ".py" and path.name != "__init__.py":
            lines.append(f"{pad}{path.name}".ljust(WIDTH) + summary(path))
    return lines


def module_tree(relative: str) -> str:
    """The tree of the package folder ``relative`` (to the repository root) as text."""
    folder = ROOT / relative
    if not (folder / "__init__.py").exists():
        raise ValueError(f"module-tree: {relative!r} is not a package folder under {ROOT}")
    head = f"{relative.rstrip('/')}/".ljust(WIDTH) + summary(folder / "__init__.py")
    return "\n".join([head, *tree_lines(folder, 1)])


class ModuleTree(SphinxDirective):
    """``{module-tree} FOLDER``: a literal block with the package's generated module tree."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        text = module_tree(self.arguments[0])
        for path in (ROOT / self.arguments[0]).rglob("*.py"):
            self.env.note_dependency(str(path))
        return [nodes.literal_block(text, text)]


def setup(app):  # noqa: D103 - Sphinx entry point
    app.add_directive("module-tree", ModuleTree)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
