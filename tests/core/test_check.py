"""check_gradient: the tool users run before trusting an estimator."""

from __future__ import annotations

import pytest
import torch

from torch import nn

from diffbypass import (
    ES,
    Bypass,
    FiniteDifference,
    Gated,
    GradientCheck,
    StraightThrough,
    Surrogate,
    check_gradient,
)

from .closed_forms import Z, sign_term_variance, smoothed_sign_grad
from .registry import gen


def smooth(x):
    return torch.tanh(x) * x


def autograd_vjp(x, v):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(smooth(x), x, v)
    return g


X = torch.randn(3, 4, generator=gen(0), dtype=torch.float64)
SIGMA = 0.5
XS = torch.tensor([-1.5, -0.8, -0.3, 0.2, 0.6, 1.1, 2.0], dtype=torch.float64).reshape(-1, 1)


def test_finite_difference_against_an_autograd_reference():
    result = check_gradient(FiniteDifference(eps=1e-5), smooth, X, reference=autograd_vjp)
    assert isinstance(result, GradientCheck)
    assert result.cosine == pytest.approx(1.0, abs=1e-9)
    assert result.norm_ratio == pytest.approx(1.0, abs=1e-7)
    assert torch.allclose(result.per_sample_cosine, torch.ones(3, dtype=torch.float64), atol=1e-9)
    assert result.estimate.shape == result.reference.shape == X.shape
    assert "cosine 1.000" in str(result)


def test_default_reference_is_finite_differences():
    result = check_gradient(Bypass(smooth, FiniteDifference(eps=1e-4)), None, X)
    assert result.cosine == pytest.approx(1.0, abs=1e-9)


def test_grad_output_is_seeded_and_can_be_given():
    a = check_gradient(StraightThrough(), smooth, X, seed=3)
    b = check_gradient(StraightThrough(), smooth, X, seed=3)
    assert torch.equal(a.estimate, b.estimate)
    v = torch.randn(3, 4, generator=gen(9), dtype=torch.float64)
    c = check_gradient(StraightThrough(), smooth, X, grad_output=v)
    assert torch.equal(c.estimate, v)  # straight-through returns the grad_output itself


def test_es_reference_for_sign_is_the_smoothed_gradient():
    """The 'es' reference (10^4 antithetic samples, the checked estimator's sigma) matches
    2 phi(x/sigma)/sigma * v within Z standard errors (closed form in test_es.py)."""
    v = torch.ones(XS.shape, dtype=torch.float64)
    est = ES(sigma=SIGMA, samples=200, generator=gen(1))
    result = check_gradient(est, torch.sign, XS, reference="es", grad_output=v)
    se = (sign_term_variance(XS, SIGMA, antithetic=True) / 5000).sqrt()
    want = smoothed_sign_grad(XS, SIGMA)
    assert bool(((result.reference - want).abs() <= Z * se).all())
    assert result.cosine > 0.95  # 200 samples vs the reference


def test_reference_callable_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"reference returned shape \(3, 1\); expected \(3, 4\)"):
        check_gradient(FiniteDifference(), smooth, X, reference=lambda x, v: v[:, :1])


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (
            lambda: check_gradient(Bypass(smooth, FiniteDifference()), torch.sin, X),
            ValueError,
            r"fn must be None or the Bypass's own fn",
        ),
        (
            lambda: check_gradient(FiniteDifference(), None, X),
            ValueError,
            r"fn must be given when layer_or_estimator is an estimator",
        ),
        (
            lambda: check_gradient("fd", smooth, X),
            TypeError,
            r"layer_or_estimator must be a Bypass or an Estimator; got str",
        ),
        (
            lambda: check_gradient(FiniteDifference(), smooth, torch.tensor(1.0)),
            ValueError,
            r"x must be a batched tensor",
        ),
        (
            lambda: check_gradient(FiniteDifference(), smooth, X, reference="exact"),
            ValueError,
            r"reference must be 'finite_difference', 'es', an Estimator or a callable; got 'exact'",
        ),
        (
            lambda: check_gradient(FiniteDifference(), smooth, X, reference="es"),
            ValueError,
            r"reference='es' needs reference_sigma",
        ),
        (
            lambda: check_gradient(StraightThrough(), lambda t: t.long(), X),
            TypeError,
            r"StraightThrough needs a real-valued fn output",
        ),
    ],
    ids=["other-fn", "no-fn", "not-estimator", "0-d", "bad-reference", "es-no-sigma", "int"],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_estimator_as_reference():
    result = check_gradient(
        FiniteDifference(eps=1e-4), smooth, X, reference=FiniteDifference(eps=1e-5)
    )
    assert result.cosine == pytest.approx(1.0, abs=1e-8)


# ---------------------------------------------------------------------------------- works on a copy (#8)
def test_check_gradient_does_not_change_the_estimator_it_checks():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(3, 3).double()
    est = Surrogate(model, samples=4, fit_steps=2, lr=1e-2, generator=gen(0))
    layer = Bypass(torch.sin, est)
    calls = []
    est.register_fit_hook(lambda e, s: calls.append(s))
    state = {k: v.clone() for k, v in est.model.state_dict().items()}
    rng = est.sampler.generator.get_state()
    x = torch.randn(2, 3, generator=gen(1), dtype=torch.float64)
    check_gradient(layer, None, x)
    assert all(torch.equal(state[k], v) for k, v in est.model.state_dict().items())
    assert torch.equal(est.sampler.generator.get_state(), rng)
    assert est.optimizer.state_dict()["state"] == {} and est.stats is None and calls == []
    assert layer.blackbox.calls == 0

    es = ES(sigma=0.5, samples=4, generator=gen(2))
    rng = es.sampler.generator.get_state()
    check_gradient(es, torch.sin, x, reference=ES(sigma=0.5, samples=4, generator=gen(3)))
    assert torch.equal(es.sampler.generator.get_state(), rng) and es.stats is None


def test_check_gradient_of_a_copy_gives_the_same_numbers_twice():
    x = torch.randn(2, 3, generator=gen(1), dtype=torch.float64)
    layer = Bypass(torch.sin, ES(sigma=0.5, samples=4, generator=gen(2)))
    assert torch.equal(check_gradient(layer, None, x).estimate, check_gradient(layer, None, x).estimate)


def test_check_gradient_reference_cannot_corrupt_x():
    x0 = torch.randn(2, 3, generator=gen(1), dtype=torch.float64)
    x = x0.clone()

    def reference(z, v):
        g = torch.cos(z) * v
        z.mul_(0)
        return g

    check_gradient(FiniteDifference(eps=1e-5), torch.sin, x, reference=reference)
    assert torch.equal(x, x0)


def test_check_gradient_never_calls_the_callers_hooks_of_inner_estimators():
    """Gated's gate hooks and its surrogate's fit hooks were called by the check (its copy kept
    them); the check now removes every hook of the copy, inner estimators' included."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(3, 3).double()
    surrogate = Surrogate(model, sigma=0.5, samples=4, fit_steps=1, generator=gen(0))
    gate = Gated(surrogate, probe=ES(sigma=0.5, samples=4, generator=gen(1)), every=1)
    calls = []
    surrogate.register_fit_hook(lambda e, s: calls.append("fit"))
    gate.register_gate_hook(lambda e, s: calls.append("gate"))
    x = torch.randn(2, 3, generator=gen(1), dtype=torch.float64)
    check_gradient(gate, torch.sin, x)
    check_gradient(Bypass(torch.sin, gate), None, x)
    assert calls == [] and gate.gate_stats is None
    Bypass(torch.sin, gate)(x.clone().requires_grad_(True)).sum().backward()
    assert calls == ["fit", "gate"]  # the caller's hooks are still attached to the original
