"""Benchmark results in the docs, read from the JSON and PNG files the benchmarks write.

Three directives, paths relative to ``benchmarks/`` (``benchjson_root``)::

    ```{benchmark-table} estimators/results/estimators.json
    ```

    ```{benchmark-plot} estimators/results/estimators.png
    :alt: gradient error against evaluations
    A caption.
    ```

    ```{benchmark-registry}
    ```

``benchmark-table`` renders the JSON convention documented in ``docs/benchmarks.md``: a table
from ``"table": {"columns": [...], "rows": [[...], ...]}``, then the ``"method"`` text and the
``"machine"`` metadata; the method is Markdown (inline code, emphasis), parsed like the page.
``benchmark-plot`` shows a PNG that the benchmark drew from its JSON at the page's width, linked
to the full-size image; Sphinx copies it into the build. ``benchmark-registry`` renders the
registry of studies, ``benchmarks/registry.py``. A result file that does not exist yet renders
as a visible "not yet run" box, not a warning, so the site builds before ``make bench`` has run. A JSON file
that exists but breaks the convention is an error.

Pages that use a result file depend on it: editing or creating it rebuilds them.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import posixpath
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective


class ConventionError(ValueError):
    """A result file that does not follow the JSON convention; the message says what is wrong."""


def format_cell(value: Any) -> str:
    """How a JSON value is shown in a table cell: floats to 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def read_result(text: str) -> dict[str, Any]:
    """Parse and check one result file; return its ``columns``, ``rows`` and the other keys."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConventionError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConventionError(f"the top level must be an object; got {type(data).__name__}")
    table = data.get("table")
    if not isinstance(table, dict):
        raise ConventionError('needs a "table" object with "columns" and "rows"')
    columns, rows = table.get("columns"), table.get("rows")
    if not (isinstance(columns, list) and columns and all(isinstance(c, str) for c in columns)):
        raise ConventionError('"table.columns" must be a non-empty list of strings')
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ConventionError('"table.rows" must be a list of lists')
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise ConventionError(
                f'"table.rows[{i}]" has {len(row)} cells; expected {len(columns)} (one per column)'
            )
    method = data.get("method")
    if not isinstance(method, str) or not method.strip():
        raise ConventionError('needs a non-empty "method" text: how the numbers were measured')
    return {**data, "columns": columns, "rows": rows, "method": method}


def table_node(columns: list[str], rows: list[list[Any]], title: str = "") -> nodes.table:
    """A docutils table with a header row."""
    table = nodes.table(classes=["benchmark-table"])
    if title:
        table += nodes.title(text=title)
    group = nodes.tgroup(cols=len(columns))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in columns)

    def row_node(cells: list[str]) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=cell)
            row += entry
        return row

    head = nodes.thead()
    head += row_node(columns)
    body = nodes.tbody()
    body.extend(row_node([format_cell(v) for v in r]) for r in rows)
    group += [head, body]
    return table


def not_yet_run(path: str, what: str) -> nodes.admonition:
    """The visible placeholder for a result file that does not exist yet."""
    box = nodes.admonition(classes=["attention", "benchmark-not-run"])
    box += nodes.title(text="Benchmark not yet run")
    para = nodes.paragraph()
    para += nodes.Text(f"This {what} is read from ")
    para += nodes.literal(text=f"benchmarks/{path}")
    para += nodes.Text(", which has not been written yet. Run ")
    para += nodes.literal(text="make bench")
    para += nodes.Text(" and rebuild the docs.")
    box += para
    return box


class _BenchmarkDirective(SphinxDirective):
    required_arguments = 1

    def resolve(self, relpath: str) -> Path:
        root = Path(self.env.srcdir, self.config.benchjson_root).resolve()
        path = (root / relpath).resolve()
        self.env.note_dependency(str(path))  # rebuild this page when the file appears or changes
        return path

    def figure(self, path: Path, caption: str, alt: str) -> nodes.figure:
        docdir = Path(self.env.doc2path(self.env.docname)).parent.resolve()
        uri = Path(os.path.relpath(path, docdir)).as_posix()  # Sphinx copies it to _images/
        fig = nodes.figure(classes=["benchmark-plot"])
        # a width makes Sphinx link the image to its full-size file (html_scaled_image_link)
        fig += nodes.image(uri=uri, alt=alt or caption or path.name, width="100%")
        if caption:
            fig += nodes.caption(text=caption)
        return fig


class BenchmarkTable(_BenchmarkDirective):
    """``{benchmark-table} results/<name>.json``: the table, then the method and the machine."""

    option_spec = {"caption": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        relpath = self.arguments[0]
        path = self.resolve(relpath)
        if not path.is_file():
            return [not_yet_run(relpath, "table")]
        try:
            result = read_result(path.read_text(encoding="utf-8"))
        except ConventionError as exc:
            raise self.error(f"benchmarks/{relpath}: {exc} (see docs/benchmarks.md)") from None
        title = self.options.get("caption") or str(result.get("title", ""))
        out: list[nodes.Node] = [table_node(result["columns"], result["rows"], title)]
        method = nodes.container(classes=["benchmark-method"])
        method.extend(self.method_nodes(result["method"]))
        machine = result.get("machine")
        if machine:
            para = nodes.paragraph()
            para += nodes.strong(text="Machine. ")
            if isinstance(machine, dict):
                machine = "; ".join(f"{k}: {format_cell(v)}" for k, v in machine.items())
            para += nodes.Text(str(machine))
            method += para
        source = nodes.paragraph()
        source += nodes.Text("Source: ")
        source += nodes.literal(text=posixpath.normpath(f"benchmarks/{relpath}"))
        method += source
        out.append(method)
        return out


    def method_nodes(self, text: str) -> list[nodes.Node]:
        """The method text parsed as Markdown (reST ````code```` read as code), led by
        "Method."."""
        parsed = list(self.parse_text_to_nodes(text.replace("``", "`")))
        first = next((n for n in parsed if isinstance(n, nodes.paragraph)), None)
        if first is None:
            first = nodes.paragraph()
            parsed.insert(0, first)
        first.insert(0, nodes.strong(text="Method. "))
        return parsed


def registry_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The columns and rows of the registry of studies in ``path`` (``benchmarks/registry.py``)."""
    spec = importlib.util.spec_from_file_location("_benchmark_registry", path)
    if spec is None or spec.loader is None:
        raise ConventionError(f"cannot load the registry of studies from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    columns = ["study", "what it measures", "quick run", "full run takes", "make bench", "needs"]
    rows = [[s.name, s.description, s.command(quick=True), s.duration,
             "yes" if s.in_bench else "no", s.needs or "–"] for s in module.STUDIES]
    return columns, rows


class BenchmarkRegistry(_BenchmarkDirective):
    """``{benchmark-registry}``: the table of studies read from ``benchmarks/registry.py``."""

    required_arguments = 0

    def run(self) -> list[nodes.Node]:
        columns, rows = registry_rows(self.resolve("registry.py"))
        return [table_node(columns, rows, "The studies (benchmarks/registry.py)")]


class BenchmarkPlot(_BenchmarkDirective):
    """``{benchmark-plot} results/<name>.png``: the figure, its content as caption."""

    has_content = True
    option_spec = {"alt": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        relpath = self.arguments[0]
        path = self.resolve(relpath)
        if not path.is_file():
            return [not_yet_run(relpath, "plot")]
        return [self.figure(path, " ".join(self.content).strip(), self.options.get("alt", ""))]


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("benchjson_root", "../benchmarks", "env")
    app.add_directive("benchmark-table", BenchmarkTable)
    app.add_directive("benchmark-plot", BenchmarkPlot)
    app.add_directive("benchmark-registry", BenchmarkRegistry)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
