"""The torch-free tables ``lvseg train``'s options choose from agree with the torch code they
name."""

from __future__ import annotations

import dataclasses

import pytest

from lvseg.edpcnn import SURROGATES
from lvseg.methods import METHODS, Method, _pixel_step
from lvseg.train_choices import METHOD_DEFAULTS, SURROGATE_NAMES, MethodDefaults


def test_every_method_carries_its_defaults_and_an_estimator_exactly_when_estimated() -> None:
    assert list(METHODS) == list(METHOD_DEFAULTS)
    for name, method in METHODS.items():
        defaults = {f.name: getattr(method, f.name) for f in dataclasses.fields(MethodDefaults)}
        assert MethodDefaults(**defaults) == METHOD_DEFAULTS[name]
        assert (method.estimator is not None) == method.estimated, name
    assert [m.name for m in METHODS.values() if m.end_to_end] == [
        "edpcnn", "edpcnn-es", "edpcnn-softdp"]


def test_a_method_with_an_estimator_it_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match=r"method 'x': estimator must be given exactly when the "
                                         r"method is estimated \(estimated=False\)"):
        Method(name="x", help="", dp=False, iterations=1, estimator=lambda c, g: None,
               dp_output=None, loss=_pixel_step)


def test_the_surrogate_names_are_the_surrogate_table_s_keys() -> None:
    assert tuple(SURROGATES) == SURROGATE_NAMES
