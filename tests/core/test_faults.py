"""Faulty black boxes and invalid arguments: clear errors, at the first call, naming what failed."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from diffbypass import ES, BlackBoxError, Bypass, StraightThrough, Surrogate

from .registry import gen


def surrogate(out_features=2, in_features=3, **kw):
    kw.setdefault("samples", 4)
    kw.setdefault("fit_steps", 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(in_features, out_features)
    return Surrogate(model, generator=gen(0), **kw)


def poisoned_after_first_call(value=float("nan"), row=3):
    """Fine at the first call (the forward); later calls return ``value`` at flat ``row``."""
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        y = x.clone()
        if len(calls) > 1:
            y[row, 0] = value
        return y

    return fn


# ---------------------------------------------------------------------------------- NaN / inf
def test_nan_in_forward_names_count_and_items():
    def fn(x):
        y = x.clone()
        y[1, 0], y[1, 2], y[3, 1] = float("nan"), float("inf"), -float("inf")
        return y

    with pytest.raises(
        BlackBoxError, match=r"fn returned 3 NaN/inf value\(s\) in forward \(batch items \[1, 3\]\)"
    ):
        Bypass(fn, StraightThrough())(torch.zeros(4, 3))


def test_nan_in_forward_is_never_dropped():
    def fn(x):
        return x / 0.0  # 0/0 = NaN

    with pytest.raises(BlackBoxError, match=r"fn returned 6 NaN/inf value\(s\) in forward"):
        Bypass(fn, ES(sigma=1.0, samples=2), nonfinite="drop")(torch.zeros(2, 3))


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nan_in_es_samples(value):
    x = torch.zeros(2, 3, requires_grad=True)
    y = Bypass(poisoned_after_first_call(value), ES(sigma=1.0, samples=8, generator=gen(0)))(x)
    with pytest.raises(
        BlackBoxError,
        match=r"fn returned 1 NaN/inf value\(s\) in ES samples: 1 of 16 perturbed samples, "
        r"first \(sample, batch item\) = \[\[1, 1\]\]; pass nonfinite='drop'",
    ):
        y.sum().backward()


def test_nan_in_surrogate_fit_samples():
    layer = Bypass(poisoned_after_first_call(), surrogate(out_features=3, samples=4))
    with pytest.raises(
        BlackBoxError, match=r"fn returned 1 NaN/inf value\(s\) in surrogate fit samples: 1 of 8"
    ):
        layer(torch.zeros(2, 3))


def test_every_fit_sample_dropped_is_an_error():
    calls = []

    def fn(x):
        calls.append(1)
        return x.clone() if len(calls) == 1 else torch.full_like(x, float("nan"))

    layer = Bypass(fn, surrogate(out_features=3), nonfinite="drop")
    with pytest.raises(
        BlackBoxError, match=r"every perturbed sample of the surrogate fit was NaN/inf"
    ):
        layer(torch.zeros(2, 3))


# ---------------------------------------------------------------------------------- fn raises
class Boom(Exception):
    pass


def raising_after(n_ok):
    calls = []

    def fn(x):
        calls.append(1)
        if len(calls) > n_ok:
            raise Boom("inside fn")
        return x.clone()

    return fn


def test_raise_in_forward_is_chained():
    with pytest.raises(BlackBoxError, match=r"^fn raised in forward$") as info:
        Bypass(raising_after(0), StraightThrough())(torch.zeros(2, 3))
    assert isinstance(info.value.__cause__, Boom) and str(info.value.__cause__) == "inside fn"


def test_raise_in_es_samples_names_the_chunk():
    x = torch.zeros(2, 3, requires_grad=True)
    fn = raising_after(2)  # forward and first chunk fine, the second chunk raises
    y = Bypass(fn, ES(sigma=1.0, samples=8, generator=gen(0)), max_batch=4)(x)
    with pytest.raises(
        BlackBoxError, match=r"^fn raised in ES samples, chunk 2 of 4 \(flat samples 5\.\.8 of 16\)$"
    ) as info:
        y.sum().backward()
    assert isinstance(info.value.__cause__, Boom)


def test_raise_in_surrogate_fit_samples_through_an_executor():
    with ThreadPoolExecutor(1) as pool:
        layer = Bypass(raising_after(1), surrogate(out_features=3), executor=pool)
        with pytest.raises(
            BlackBoxError, match=r"fn raised in surrogate fit samples, chunk 1 of 4"
        ) as info:
            layer(torch.zeros(2, 3))
    assert isinstance(info.value.__cause__, Boom)


# ---------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    "fn,got",
    [(lambda x: x[:-1], r"\(3, 2\)"), (lambda x: x.sum(), r"\(\)"), (lambda x: x.T, r"\(2, 4\)")],
    ids=["short", "scalar", "transposed"],
)
def test_wrong_leading_dimension_at_the_first_call(fn, got):
    layer = Bypass(fn, ES(sigma=1.0, samples=2))
    with pytest.raises(
        BlackBoxError, match=rf"leading \(batch\) dimension 4; got shape {got} in forward"
    ):
        layer(torch.zeros(4, 2))
    assert layer.blackbox.calls == 1


def test_wrong_leading_dimension_in_perturbed_samples():
    x = torch.zeros(4, 2, requires_grad=True)
    y = Bypass(lambda t: t[:4].clone(), ES(sigma=1.0, samples=2, generator=gen(0)))(x)
    with pytest.raises(
        BlackBoxError,
        match=r"leading \(batch\) dimension 8; got shape \(4, 2\) in ES samples$",
    ):
        y.sum().backward()


def test_output_shape_changing_between_calls():
    calls = []

    def fn(x):
        calls.append(1)
        return x[:, : 3 if len(calls) == 1 else 2]

    layer = Bypass(fn, ES(sigma=1.0, samples=2))
    layer(torch.zeros(2, 4))
    with pytest.raises(
        BlackBoxError,
        match=r"fn's output changed between calls: first per-item shape \(3,\) \(floating\), "
        r"now \(2,\) \(floating\) in forward",
    ):
        layer(torch.zeros(2, 4))


def test_output_kind_changing_between_calls():
    calls = []

    def fn(x):
        calls.append(1)
        return x if len(calls) == 1 else x.long()

    layer = Bypass(fn, StraightThrough())
    layer(torch.zeros(2, 4))
    with pytest.raises(BlackBoxError, match=r"now \(4,\) \(integer\) in forward"):
        layer(torch.zeros(2, 4))


@pytest.mark.parametrize(
    "out,match",
    [
        ([1.0, 2.0], r"must return a torch.Tensor or numpy.ndarray; got list in forward"),
        (
            np.array([object(), object()]),
            r"fn returned a NumPy array of dtype object and shape \(2,\) in forward; expected numbers",
        ),
    ],
    ids=["list", "object-array"],
)
def test_unusable_output_types(out, match):
    with pytest.raises(BlackBoxError, match=match):
        Bypass(lambda x: out, StraightThrough())(torch.zeros(2))


def test_surrogate_output_shape_mismatch_at_the_first_call():
    layer = Bypass(lambda x: x[:, :2], surrogate(out_features=3))
    with pytest.raises(
        BlackBoxError, match=r"the surrogate must return fn's per-item shape \(2,\); got \(3,\)"
    ):
        layer(torch.zeros(2, 3))
    assert layer.blackbox.calls == 1  # before any fit


def test_cross_entropy_needs_integer_output():
    layer = Bypass(lambda x: x[:, :2], surrogate(fit_loss="ce"))
    with pytest.raises(
        BlackBoxError,
        match=r"fit_loss='ce' needs fn to return integer class indices; got torch.float32",
    ):
        layer(torch.zeros(2, 3))


def ce_surrogate(groups=2, classes=3):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(3, groups * classes), nn.Unflatten(1, (groups, classes)))
    return Surrogate(net, fit_loss="ce", samples=4, fit_steps=1, generator=gen(0))


def test_class_index_beyond_the_logits_at_the_first_call():
    layer = Bypass(lambda x: torch.full((x.shape[0], 2), 4), ce_surrogate(classes=3))
    with pytest.raises(
        BlackBoxError,
        match=r"fn returned class index 4 in forward; the surrogate has 3 classes \(its last axis\)",
    ):
        layer(torch.zeros(2, 3))


def test_class_index_beyond_the_logits_at_a_later_call():
    calls = []

    def fn(x):
        calls.append(1)
        return torch.full((x.shape[0], 2), 1 if len(calls) < 3 else 5)

    layer = Bypass(fn, ce_surrogate(classes=3))
    layer(torch.zeros(2, 3))
    with pytest.raises(
        BlackBoxError, match=r"fn returned class index 5 in forward; the surrogate has 3 classes"
    ):
        layer(torch.zeros(2, 3))


def test_class_index_beyond_the_logits_in_fit_samples():
    """Fine at x, out of range at some perturbed samples: a clear error, not cross_entropy's."""

    def fn(x):
        return (x[:, :2] > 1.0).long() * 7

    layer = Bypass(fn, ce_surrogate(classes=3))
    with pytest.raises(
        BlackBoxError, match=r"class index 7 in surrogate fit samples; the surrogate has 3 classes"
    ):
        layer(torch.zeros(4, 3))


def test_negative_class_index():
    layer = Bypass(lambda x: torch.full((x.shape[0], 2), -1), ce_surrogate())
    with pytest.raises(BlackBoxError, match=r"fn returned a negative class index \(-1\) in forward"):
        layer(torch.zeros(2, 3))


def test_empty_batch_is_rejected():
    x = torch.zeros(0, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"x must have at least one item in its batch dimension; got shape \(0, 3\)"):
        Bypass(torch.sin, ES(sigma=1.0, samples=2))(x)
