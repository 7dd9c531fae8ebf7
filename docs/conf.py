"""Sphinx configuration for the diffbypass documentation.

Build with ``make docs`` (HTML) or ``make docs-check`` (warnings are errors, then the doctests).
Local extensions live in ``docs/ext``:

* ``apigen`` writes ``api/<package>.rst`` from each package's ``__all__`` before every build;
* ``coverage_check`` fails the build when a public name is missing from the reference;
* ``benchjson`` renders ``benchmarks/<study>/results/*.json`` and ``*.png`` and the registry of
  studies (``docs/benchmarks.md``).

The machine that builds the docs has no network access: nothing here downloads anything, and the
built site loads nothing from the network either (MathJax is bundled in ``_static/mathjax``).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "ext"))
# Import diffbypass from this checkout even when it is not installed. The plugin and the example
# are documented only when installed (``make install``): a plugin is found through its entry point.
sys.path.insert(0, str(ROOT))

project = "diffbypass"
author = "diffbypass developers"
copyright = "diffbypass developers"  # noqa: A001 - Sphinx's name for it
try:
    from diffbypass import __version__ as release
except Exception:  # noqa: BLE001 - the docs must build while the package is being written
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_copybutton",
    "apigen",
    "coverage_check",
    "benchjson",
    "moduletree",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "ext"]
templates_path = ["_templates"]

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"diffbypass {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # wide benchmark tables scroll inside the page
pygments_style = "default"
# Quotes and ellipses only: "--quick" stays two hyphens instead of becoming an en-dash.
smartquotes_action = "qe"

# -- Copy button --------------------------------------------------------------------------------
# The button on every code block copies the code without the ">>> " / "... " / "$ " prompts
# (and without the output lines of a doctest).
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# -- Maths --------------------------------------------------------------------------------------
# MathJax is bundled (docs/_static/mathjax, Apache-2.0; see its README.txt) instead of loaded
# from a CDN, so that the pages show their maths offline. SVG output needs no font files.
mathjax_path = "mathjax/tex-svg-full.js"

# -- Markdown (MyST) ----------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- API reference ------------------------------------------------------------------------------
# apigen.PACKAGES lists the documented packages; stubs are generated into api/generated/.
autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True
# Unresolvable cross-references (a torch type, a name documented later) are not errors.
nitpicky = False

# -- doctest ------------------------------------------------------------------------------------
# Examples in the pages are ``{doctest}`` / ``{testcode}`` blocks. Those that use a part of the
# API that is still being written carry ``:skipif: missing("Bypass", "ES")``: they are shown in
# the HTML in every case and run by ``make docs-check`` as soon as diffbypass exports the names.
# The examples use tiny tensors: one thread is faster than many (user time 23 s -> 8 s).
doctest_global_setup = """
import torch
import diffbypass

def missing(*names):
    '''True while one of ``names`` is not exported by diffbypass yet.'''
    return not all(hasattr(diffbypass, n) for n in names)

def lacks(module):
    '''True when the optional package ``module`` is not installed (e.g. tensorboard).'''
    import importlib.util
    return importlib.util.find_spec(module) is None

torch.set_num_threads(1)
torch.manual_seed(0)
"""
# ``>>>`` examples in docstrings run under pytest --doctest-modules (``make test``), in their
# module's namespace; here only the pages' explicit doctest blocks run.
doctest_test_doctest_blocks = ""
