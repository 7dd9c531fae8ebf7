"""The plugin as a package: entry point, public API, documentation, examples."""

from __future__ import annotations

import doctest
import importlib
import inspect
from pathlib import Path

import pytest

import diffbypass
import diffbypass_stardp

MODULES = ["blackbox", "contour", "cost", "dp", "semiring", "smoothing", "soft_dp", "star",
           "surrogate", "torch_dp", "warp"]


def test_entry_point_loads_the_plugin_record():
    assert "stardp" in diffbypass.plugins.available()
    plugin = diffbypass.plugins.load("stardp")
    assert plugin is diffbypass_stardp.PLUGIN and isinstance(plugin, diffbypass.plugins.Plugin)
    assert (plugin.name, plugin.version) == ("stardp", diffbypass_stardp.__version__)
    assert plugin.blackbox is diffbypass_stardp.StarDP
    assert plugin.surrogate is diffbypass_stardp.StarSurrogate
    assert plugin.fit_loss == diffbypass_stardp.FIT_LOSS


def test_plugin_offers_black_box_surrogate_and_fit_loss():
    assert callable(diffbypass_stardp.StarDP())
    assert isinstance(diffbypass_stardp.StarSurrogate(), diffbypass_stardp.StarSurrogate)
    assert diffbypass_stardp.FIT_LOSS == "ce"


def test_all_is_explicit_sorted_and_documented():
    names = diffbypass_stardp.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    for name in names:
        obj = getattr(diffbypass_stardp, name)
        if name in ("FIT_LOSS", "PLUGIN"):
            continue  # data: documented by a #: comment or a docstring after the assignment
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_ships_py_typed():
    assert (Path(diffbypass_stardp.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"diffbypass_stardp.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
