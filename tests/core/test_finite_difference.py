"""FiniteDifference against autograd on smooth functions, and gradcheck on differentiable paths."""

from __future__ import annotations

import pytest
import torch

from diffbypass import BlackBoxError, Bypass, FiniteDifference

from .registry import gen


def smooth_same_shape(x):
    return torch.sin(x) * x**2


def smooth_reduce(x):
    flat = x.flatten(1)
    return torch.stack([torch.nn.functional.softplus(flat).sum(1), (flat**3).mean(1)], dim=1)


@pytest.mark.parametrize("fn", [smooth_same_shape, smooth_reduce], ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2)], ids=str)
def test_matches_autograd_on_smooth_functions(fn, shape):
    """Central differences: truncation eps^2 |f'''| / 6 ~ 1e-10 at eps = 1e-5, rounding
    ~1e-16 |f| / eps ~ 1e-11 (float64); atol 1e-7 leaves a wide margin."""
    x = torch.randn(shape, generator=gen(0), dtype=torch.float64, requires_grad=True)
    y = Bypass(fn, FiniteDifference(eps=1e-5))(x)
    v = torch.randn(y.shape, generator=gen(1), dtype=torch.float64)
    y.backward(v)
    xx = x.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad(fn(xx), xx, v)
    torch.testing.assert_close(x.grad, want, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("fn", [smooth_same_shape, smooth_reduce], ids=lambda f: f.__name__)
def test_gradcheck(fn):
    """Bypass(smooth fn, FiniteDifference) is differentiable: gradcheck in float64."""
    layer = Bypass(fn, FiniteDifference(eps=1e-6))
    x = torch.randn(3, 4, generator=gen(2), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-6)


def test_costs_two_evaluations_per_coordinate_in_one_call():
    sizes = []

    def fn(x):
        sizes.append(x.shape[0])
        return x**2

    x = torch.randn(5, 3, generator=gen(102), dtype=torch.float64, requires_grad=True)
    Bypass(fn, FiniteDifference())(x).sum().backward()
    assert sizes == [5, 2 * 3 * 5]


def test_chunking_does_not_change_the_result():
    x = torch.randn(5, 3, generator=gen(3), dtype=torch.float64)

    def grad(**kw):
        xx = x.clone().requires_grad_(True)
        Bypass(smooth_same_shape, FiniteDifference(), **kw)(xx).sum().backward()
        return xx.grad

    assert torch.equal(grad(), grad(max_batch=4))


def test_nan_cannot_be_dropped():
    def fn(x):
        return torch.where(x > 0.5, float("nan"), x)

    x = torch.full((1, 2), 0.5 - 5e-4, dtype=torch.float64, requires_grad=True)
    y = Bypass(fn, FiniteDifference(eps=1e-3), nonfinite="drop")(x)
    with pytest.raises(
        BlackBoxError, match=r"FiniteDifference cannot drop samples: fn returned NaN/inf"
    ):
        y.sum().backward()


def test_integer_output_is_a_type_error():
    with pytest.raises(
        TypeError, match=r"FiniteDifference needs a real-valued fn output; got torch.int64"
    ):
        Bypass(lambda t: t.argmax(1), FiniteDifference())(torch.randn(2, 3, generator=gen(104)))


def test_repr():
    assert "eps=0.01" in repr(FiniteDifference(eps=0.01))
