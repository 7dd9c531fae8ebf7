"""The plugin contract: a typed Plugin record found through the 'diffbypass.plugins' entry points.

No real plugin is needed: fake entry points refer to modules put into ``sys.modules``; the plugin
of ``docs/writing_plugins.md`` is run from the page itself.
"""

from __future__ import annotations

import re
import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch
from torch import nn

from diffbypass import plugins
from diffbypass.plugins import Plugin

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing_plugins.md"


def fake_entry_points(monkeypatch, **refs):
    """Register ``name = value`` entry points (values: modules in ``sys.modules`` or 'json')."""
    eps = [EntryPoint(name=n, value=v, group=plugins.GROUP) for n, v in refs.items()]

    def entry_points(group):
        assert group == plugins.GROUP
        return eps

    monkeypatch.setattr(plugins, "entry_points", entry_points)


def fake_module(monkeypatch, name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def record(name="tiny", **kw):
    kw = {"version": "1.0", "blackbox": lambda: torch.round, "surrogate": lambda: nn.Linear(2, 2),
          "fit_loss": "mse", **kw}  # fmt: skip
    return Plugin(name=name, **kw)


# ---------------------------------------------------------------------------------- discovery
def test_available_lists_installed_names_sorted(monkeypatch):
    fake_entry_points(monkeypatch, zeta="json", alpha="json")
    assert plugins.available() == ["alpha", "zeta"]


def test_load_returns_the_record_a_module_exports(monkeypatch):
    tiny = record()
    fake_module(monkeypatch, "diffbypass_tiny", PLUGIN=tiny)
    fake_entry_points(monkeypatch, tiny="diffbypass_tiny")
    assert plugins.load("tiny") is tiny


def test_load_returns_a_record_the_entry_point_names(monkeypatch):
    tiny = record()
    fake_module(monkeypatch, "diffbypass_tiny", PLUGIN=tiny)
    fake_entry_points(monkeypatch, tiny="diffbypass_tiny:PLUGIN")
    assert plugins.load("tiny") is tiny


def test_load_unknown_lists_installed(monkeypatch):
    fake_entry_points(monkeypatch, zeta="json", alpha="json")
    with pytest.raises(
        LookupError,
        match=r"no diffbypass plugin named 'nope' is installed \(installed: alpha, zeta\)",
    ):
        plugins.load("nope")


def test_load_unknown_with_nothing_installed(monkeypatch):
    fake_entry_points(monkeypatch)
    assert plugins.available() == []
    with pytest.raises(
        LookupError, match=r"\(installed: none\); install a distribution .*'diffbypass.plugins'"
    ):
        plugins.load("nope")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"name must be a plugin name \(str\); got int"):
        plugins.load(3)


def test_a_module_without_a_record_is_refused(monkeypatch):
    fake_entry_points(monkeypatch, alpha="json")
    with pytest.raises(
        TypeError,
        match=r"plugin 'alpha' \(entry point 'json'\) must refer to a diffbypass.plugins.Plugin, "
        r"or to a module that exports one as PLUGIN; got module without PLUGIN",
    ):
        plugins.load("alpha")


def test_a_record_under_another_name_is_refused(monkeypatch):
    fake_module(monkeypatch, "diffbypass_tiny", PLUGIN=record("other"))
    fake_entry_points(monkeypatch, tiny="diffbypass_tiny")
    with pytest.raises(ValueError, match=r"'tiny' exports a Plugin named 'other'"):
        plugins.load("tiny")


def test_a_module_that_fails_to_import_says_so(monkeypatch):
    fake_entry_points(monkeypatch, broken="diffbypass_no_such_module_xyz")
    with pytest.raises(
        ImportError,
        match=r"plugin 'broken' is installed but 'diffbypass_no_such_module_xyz' failed to import: "
        r"ModuleNotFoundError",
    ):
        plugins.load("broken")


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"name": 3}, TypeError, r"name must be a str; got int"),
        ({"name": ""}, ValueError, r"name must be a non-empty string"),
        ({"version": 1.0}, TypeError, r"version must be a str; got float"),
        ({"blackbox": "StarDP"}, TypeError, r"blackbox must be a callable factory; got str"),
        ({"surrogate": None}, TypeError, r"surrogate must be a callable factory; got NoneType"),
        ({"fit_loss": "l1"}, ValueError, r"fit_loss must be 'mse', 'ce' or a callable; got 'l1'"),
    ],
    ids=["name-type", "name-empty", "version", "blackbox", "surrogate", "fit_loss"],
)
def test_the_record_checks_its_fields(kw, exc, match):
    with pytest.raises(exc, match=match):
        record(**kw)


def test_the_record_is_frozen():
    with pytest.raises(AttributeError):
        record().name = "other"


def test_real_environment():
    names = plugins.available()
    assert names == sorted(names) and all(isinstance(n, str) for n in names)
    if "stardp" not in names:
        pytest.skip("the stardp plugin is not installed here")
    assert isinstance(plugins.load("stardp"), Plugin)


# ---------------------------------------------------------------------------------- the doc page
def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_documented_plugin_loads_and_trains(monkeypatch):
    """docs/writing_plugins.md word for word: its module, loaded by entry point, then its usage."""
    (module_src,) = [b for b in doc_blocks() if b.startswith('"""diffbypass_binning')]
    (usage_src,) = [b for b in doc_blocks() if b.startswith("import torch")]
    module = fake_module(monkeypatch, "diffbypass_binning")
    exec(compile(module_src, "diffbypass_binning", "exec"), module.__dict__)
    fake_entry_points(monkeypatch, binning="diffbypass_binning")
    assert plugins.available() == ["binning"]
    plugin = plugins.load("binning")
    assert plugin is module.PLUGIN and plugin.version == module.__version__
    torch.manual_seed(0)
    scope: dict = {}
    exec(compile(usage_src, "usage", "exec"), scope)
    assert scope["bins"].dtype == torch.int64
    assert torch.equal(scope["bins"], module.Binning()(scope["x"].detach()))
    assert scope["x"].grad.shape == (4, 16) and scope["x"].grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"levels must be an integer >= 2; got 1"):
        plugin.blackbox(levels=1)
