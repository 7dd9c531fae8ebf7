"""Plugin discovery through the 'diffbypass.plugins' entry-point group (no real plugin needed)."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from diffbypass import plugins


def fake_entry_points(*names):
    eps = [EntryPoint(name=n, value="json", group=plugins.GROUP) for n in names]

    def entry_points(group):
        assert group == plugins.GROUP
        return eps

    return entry_points


def test_available_lists_installed_names_sorted(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", fake_entry_points("zeta", "alpha"))
    assert plugins.available() == ["alpha", "zeta"]


def test_load_returns_what_the_entry_point_refers_to(monkeypatch):
    import json

    monkeypatch.setattr(plugins, "entry_points", fake_entry_points("alpha"))
    assert plugins.load("alpha") is json


def test_load_unknown_lists_installed(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", fake_entry_points("zeta", "alpha"))
    with pytest.raises(
        LookupError,
        match=r"no diffbypass plugin named 'nope' is installed \(installed: alpha, zeta\)",
    ):
        plugins.load("nope")


def test_load_unknown_with_nothing_installed(monkeypatch):
    monkeypatch.setattr(plugins, "entry_points", fake_entry_points())
    assert plugins.available() == []
    with pytest.raises(
        LookupError, match=r"\(installed: none\); install a distribution .*'diffbypass.plugins'"
    ):
        plugins.load("nope")


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"name must be a plugin name \(str\); got int"):
        plugins.load(3)


def test_real_environment():
    names = plugins.available()
    assert names == sorted(names) and all(isinstance(n, str) for n in names)
    if "stardp" not in names:
        pytest.skip("the stardp plugin is not installed here")
    assert plugins.load("stardp") is not None
