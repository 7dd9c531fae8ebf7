"""The built docs are self-contained: MathJax is bundled, nothing is loaded from a CDN.

Opened from disk with no network, pages used to show raw ``\\(x + \\sigma\\varepsilon\\)``
because MathJax came from a CDN. ``docs/conf.py`` now points ``mathjax_path`` at a copy in
``docs/_static/mathjax`` (see its README.txt). The last test builds a one-page site with the
docs' own settings (about a second) and reads the HTML, as a browser would.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def conf() -> dict:
    return runpy.run_path(str(DOCS / "conf.py"))


def test_mathjax_path_is_the_bundled_file(conf: dict) -> None:
    path = conf["mathjax_path"]
    assert not re.match(r"^(https?:)?//", path), f"mathjax_path must be local; got {path}"
    static = [DOCS / p for p in conf["html_static_path"]]
    found = [s / path for s in static if (s / path).is_file()]
    assert found, f"{path} is not in html_static_path {conf['html_static_path']}"
    bundled = found[0]
    head = bundled.read_text(encoding="utf-8")[:200]
    assert "__webpack_modules__" in head  # the MathJax component build, not a stub
    assert 1_000_000 < bundled.stat().st_size < 3_000_000
    licence = (bundled.parent / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence and "Version 2.0" in licence


def test_a_built_page_loads_mathjax_from_static_and_nothing_from_the_network(
    conf: dict, tmp_path: Path
) -> None:
    sphinx_app = pytest.importorskip("sphinx.application")
    src = tmp_path / "src"
    src.mkdir()
    (src / "index.rst").write_text("Maths\n=====\n\nInline :math:`x + \\sigma\\varepsilon`.\n")
    overrides = {
        "extensions": ["sphinx.ext.mathjax"],
        "html_static_path": [str(DOCS / p) for p in conf["html_static_path"]],
        "mathjax_path": conf["mathjax_path"],
        "html_css_files": conf.get("html_css_files", []),
    }
    (src / "conf.py").write_text("")
    app = sphinx_app.Sphinx(
        str(src), str(src), str(tmp_path / "html"), str(tmp_path / "doctrees"), "html",
        confoverrides=overrides, status=None, warning=None, freshenv=True,
    )  # fmt: skip
    app.build()
    html = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    links = re.findall(r'<link[^>]*href="([^"]+)"', html)
    assert any(s.startswith(f"_static/{conf['mathjax_path']}") for s in scripts), scripts
    remote = [u for u in scripts + links if re.match(r"^(https?:)?//", u)]
    assert not remote, f"the page loads from the network: {remote}"
    assert (tmp_path / "html" / "_static" / conf["mathjax_path"]).is_file()
    assert "\\(x + \\sigma\\varepsilon\\)" in html  # left for the bundled MathJax to render
