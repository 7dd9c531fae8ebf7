"""Guided ES: unbiased on a linear fn whatever the guide; at equal fn budget its cosine is at
least ES's with a good guide and within the mixing factor of ES's with an adversarial one."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from diffbypass import ES, Bypass, GuidedES, Surrogate

from .closed_forms import Z
from .multi_input_registry import SHARED, SIGMA, arguments, quad, quad_guide

N = 48
A = torch.randn(N, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def linear(x):
    return x @ A.T


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def true_vjp(v):
    return v @ A


GUIDES = {
    "good": lambda x, v: true_vjp(v),
    "noisy": lambda x, v: true_vjp(v)
    + 0.3 * true_vjp(v).norm() / math.sqrt(N) * torch.randn_like(x),
    "adversarial": lambda x, v: torch.linalg.qr(  # orthogonal to the true gradient
        torch.stack([true_vjp(v)[0], torch.randn(N, dtype=v.dtype)], 1)
    )[0][:, 1].reshape(1, N),
    "zero": lambda x, v: torch.zeros_like(x),
}


@pytest.mark.parametrize("guide", list(GUIDES))
def test_unbiased_on_a_linear_fn(guide):
    torch.manual_seed(1)  # the "noisy" and "adversarial" guides draw from the global RNG
    x = torch.randn(1, N, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    v = torch.randn(1, N, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    est = GuidedES(GUIDES[guide], sigma=0.3, samples=16, variant="unbiased",
                   generator=torch.Generator().manual_seed(4))  # fmt: skip
    layer = Bypass(linear, est)
    runs = []
    for _ in range(200):
        xx = x.clone().requires_grad_(True)
        layer(xx).backward(v)
        runs.append(xx.grad)
    runs = torch.cat(runs)
    mean, se = runs.mean(0), runs.std(0) / math.sqrt(len(runs))
    want = true_vjp(v)[0]
    tol = Z * se + 1e-9 * want.abs().max()
    assert torch.all((mean - want).abs() <= tol), float(((mean - want).abs() / se).max())


def mean_cosine(est, steps=60, seed=5):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    layer, cosines = Bypass(linear, est), []
    for _ in range(steps):
        x = torch.randn(1, N, dtype=torch.float64, generator=g, requires_grad=True)
        v = torch.randn(1, N, dtype=torch.float64, generator=g)
        layer(x).backward(v)
        cosines.append(float(F.cosine_similarity(x.grad, true_vjp(v))))
    return sum(cosines) / len(cosines), layer.blackbox.instances


@pytest.mark.parametrize("alpha", [0.25, 0.5])
def test_cosine_at_equal_budget_good_and_adversarial_guides(alpha):
    es, es_calls = mean_cosine(ES(sigma=0.3, samples=16, generator=seeded(6)))
    for name in ("good", "noisy", "adversarial"):
        gest = GuidedES(GUIDES[name], sigma=0.3, samples=16, alpha=alpha, variant="unbiased",
                        generator=torch.Generator().manual_seed(7))  # fmt: skip
        cos, calls = mean_cosine(gest)
        assert calls == es_calls  # equal fn budget
        if name == "adversarial":
            assert cos >= alpha * es, (name, cos, es)  # within the mixing factor of ES
        else:
            assert cos >= es, (name, cos, es)
    perfect = GuidedES(GUIDES["good"], sigma=0.3, samples=16, alpha=alpha, variant="unbiased")
    assert mean_cosine(perfect)[0] > 0.999


def test_surrogate_guide_fits_in_forward_and_history_spans_past_directions():
    net = torch.nn.Linear(N, N).double()
    sur = Surrogate(net, sigma=0.3, samples=4, fit_steps=1, generator=seeded(0))
    est = GuidedES(sur, sigma=0.3, samples=8, history=3, variant="unbiased",
                   generator=torch.Generator().manual_seed(1))  # fmt: skip
    layer = Bypass(linear, est)
    for t in range(5):
        x = torch.randn(2, N, dtype=torch.float64, requires_grad=True)
        layer(x).sum().backward()
        assert layer.stats is not None and layer.stats.steps == 1
    y = linear(x.detach())
    assert est.directions(layer.blackbox, x.detach(), y, torch.ones_like(y)).shape == (2, 4, N)


def test_errors():
    with pytest.raises(ValueError, match=r"alpha must be .*got 1.0"):
        GuidedES(GUIDES["good"], sigma=0.3, samples=8, alpha=1.0)
    with pytest.raises(TypeError, match="guide must be a diffbypass Estimator"):
        GuidedES(3, sigma=0.3, samples=8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples must be"):
        GuidedES(GUIDES["good"], sigma=0.3, samples=2)
    layer = Bypass(linear, GuidedES(lambda x, v: x[:, :3], sigma=0.3, samples=4))
    x = torch.zeros(1, N, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"the guide must return x's shape \(1, 48\); got \(1, 3"):
        layer(x).sum().backward()


def assert_mean_is(layer, v, want, runs=300):
    """The mean of ``runs`` gradients at x = 0 for the output gradient ``v`` is ``want``
    within ``Z`` standard errors per coordinate."""
    grads = []
    for _ in range(runs):
        x = torch.zeros(1, N, dtype=torch.float64, requires_grad=True)
        layer(x).backward(v)
        grads.append(x.grad)
    grads = torch.cat(grads)
    se = grads.std(0) / math.sqrt(runs)
    assert torch.all((grads.mean(0) - want).abs() <= Z * se + 1e-9)


def test_paper_variant_mean_is_the_preconditioned_gradient():
    """variant="paper": E g = Sigma grad, Sigma = alpha I + (1 - alpha) n/k U U^T (linear fn)."""
    alpha = 0.5
    u = torch.linalg.qr(torch.randn(N, 1, dtype=torch.float64, generator=seeded(8)))[0]
    est = GuidedES(lambda x, v: u.T.expand_as(x), sigma=0.3, samples=16, alpha=alpha,
                   variant="paper", generator=seeded(9))  # fmt: skip
    layer = Bypass(linear, est)
    v = torch.randn(1, N, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    sigma_mat = alpha * torch.eye(N, dtype=torch.float64) + (1 - alpha) * N * (u @ u.T)
    assert_mean_is(layer, v, sigma_mat @ true_vjp(v)[0])
    good, _ = mean_cosine(GuidedES(GUIDES["noisy"], sigma=0.3, samples=16, variant="paper",
                                   generator=torch.Generator().manual_seed(7)))  # fmt: skip
    es, _ = mean_cosine(ES(sigma=0.3, samples=16, generator=torch.Generator().manual_seed(6)))
    assert good >= es


def test_paper_variant_leans_towards_the_guide_with_a_per_coordinate_sigma():
    """With sigma D per coordinate the guide's directions were used as noise directions
    unscaled: the mean was D^-1 Sigma D g, not the guide's gradient scaled; now it is
    (alpha + (1 - alpha) n) g for a perfect guide (the noise leans along D g)."""
    alpha, scale = 0.5, torch.linspace(0.05, 1.0, N, dtype=torch.float64)
    layer = Bypass(linear, GuidedES(GUIDES["good"], sigma=scale, samples=16, alpha=alpha,
                                    generator=seeded(10)))  # fmt: skip
    v = torch.randn(1, N, dtype=torch.float64, generator=seeded(11))
    assert_mean_is(layer, v, (alpha + (1 - alpha) * N) * true_vjp(v)[0])


def test_a_nan_guide_is_a_clear_error():
    """A NaN guide gave a NaN gradient without an error."""
    nan_guide = lambda x, v: torch.where(x > 0, float("nan"), 1.0)  # noqa: E731
    layer = Bypass(linear, GuidedES(nan_guide, sigma=0.3, samples=4, generator=seeded(0)))
    x = torch.cat([-torch.ones(1, N), torch.ones(1, N)]).double().requires_grad_(True)
    with pytest.raises(ValueError, match=rf"the guide returned {N} NaN/inf value\(s\) in its directions "
                       r"\(batch items \[1\]\); a guide must return finite directions"):
        layer(x).sum().backward()


def test_history_restarts_when_the_item_size_changes():
    """The history of another item size raised a raw torch.cat error."""
    est = GuidedES(lambda x, v: torch.ones_like(x), sigma=0.3, samples=4, history=2,
                   generator=seeded(0))  # fmt: skip
    for n in (N, N, 5):
        layer = Bypass(lambda t: t.sin(), est)
        x = torch.randn(2, n, dtype=torch.float64, generator=seeded(n), requires_grad=True)
        layer(x).sum().backward()
        assert torch.isfinite(x.grad).all()
    assert len(est._past) == 1 and est._past[0].shape == (5,)


def _quad_backward(est):
    """One backward of :func:`quad` through ``est`` with ``x`` batched and ``theta`` shared."""
    x, aux, theta, k = arguments(14)
    xs, th = x.clone().requires_grad_(True), theta.clone().requires_grad_(True)
    Bypass(quad, est, shared=SHARED)(xs, aux, th, k).sum().backward()
    return xs.grad, th.grad


@pytest.mark.parametrize("guide,match", [
    (lambda x, aux, theta, k, v: v, r"the guide must return one direction per differentiable "
     r"argument \('x', 'theta'\), in argument order; got 1"),
    (lambda x, aux, theta, k, v: (x, x), r"the guide must return theta's shape \(3,\); got \(5, 4\)"),
    (lambda x, aux, theta, k, v: (x, theta * float("nan")), r"the guide returned 3 NaN/inf "
     r"value\(s\) in its directions for theta; a guide must return finite directions of theta's"),
])  # fmt: skip
def test_several_arguments_guide_errors(guide, match):
    """GuidedES refused several arguments; now a function guide returns one direction each."""
    with pytest.raises(ValueError, match=match):
        _quad_backward(GuidedES(guide, sigma=0.1, samples=4, generator=seeded(0)))


def test_several_arguments_history_per_argument_survives_state_dict():
    guide = lambda *args: quad_guide(*args)[::2]  # noqa: E731  (x and theta require grad)
    est = GuidedES(guide, sigma=SIGMA, samples=4, history=2, generator=seeded(0))
    for _ in range(3):
        _quad_backward(est)
    assert {n: len(p) for n, p in est._pasts.items()} == {"x": 2, "theta": 2}
    assert est._pasts["theta"][0].shape == (3,) and est._pasts["x"][0].shape == (4,)
    other = GuidedES(guide, sigma=SIGMA, samples=4, history=2)
    other.load_state_dict(est.state_dict())
    for name, past in est._pasts.items():
        assert all(torch.equal(a, b) for a, b in zip(past, other._pasts[name]))
    assert all(torch.equal(a, b) for a, b in zip(_quad_backward(est), _quad_backward(other)))
