"""StraightThrough: identity VJP, same-shape only."""

from __future__ import annotations

import pytest
import torch

from diffbypass import BlackBoxError, Bypass, StraightThrough

from .registry import gen


def test_vjp_is_the_identity():
    x = torch.randn(3, 4, generator=gen(0), requires_grad=True)
    v = torch.randn(3, 4, generator=gen(1))
    y = Bypass(torch.round, StraightThrough())(x)
    assert torch.equal(y, torch.round(x.detach()))
    y.backward(v)
    assert torch.equal(x.grad, v)


def test_gradcheck_on_the_identity():
    """The one fn where the identity VJP is the true gradient."""
    layer = Bypass(lambda t: t.clone(), StraightThrough())
    x = torch.randn(2, 3, generator=gen(2), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_different_output_shape_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"StraightThrough needs fn's output to have the input's shape \(2, 3\); "
        r"got \(2, 1\)\. Use Surrogate or ES",
    ):
        Bypass(lambda t: t.sum(1, keepdim=True), StraightThrough())(torch.zeros(2, 3))


def test_integer_output_is_a_type_error():
    with pytest.raises(
        TypeError, match=r"StraightThrough needs a real-valued fn output; got torch.int64"
    ):
        Bypass(lambda t: t.long(), StraightThrough())(torch.zeros(2, 3))


def test_does_not_call_fn_in_backward():
    layer = Bypass(torch.round, StraightThrough())
    x = torch.randn(2, 2, generator=gen(104), requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert layer.blackbox.calls == 1


def test_bool_output_is_rejected():
    with pytest.raises(
        BlackBoxError, match=r"fn must return real numbers or integer indices; got torch.bool"
    ):
        Bypass(lambda t: t > 0, StraightThrough())(torch.zeros(2, 2))
