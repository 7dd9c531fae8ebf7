"""The one smoothing formula (``diffbypass.smoothing``), tested once against closed forms, and
the features every estimator built on it now shares (noise, sampler, NaN policy, telemetry)."""

from __future__ import annotations

import pytest
import torch

from diffbypass import ES, BlackBox, BlackBoxError, Bypass, ESStats, GuidedES, NoiseSampler, Perturbed, Relative
from diffbypass.noise import NOISES, Reflected
from diffbypass.smoothing import Weights, combine, smoothed_vjp

from .closed_forms import Z, sign_term_variance, smoothed_sign_grad
from .registry import gen

X = torch.tensor([[-1.2, -0.3, 0.05, 0.4, 1.5]], dtype=torch.float64)
XS = X.T  # five items of one coordinate: independent estimates, as the closed forms assume


def vjp(fn, x, eps, scale, **kw):
    """smoothed_vjp with v = 1 and its baseline at x."""
    y = fn(x)
    return smoothed_vjp(BlackBox(fn, **kw.pop("policy", {})), x, y, torch.ones_like(y), eps, scale, **kw)


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "plain"])
@pytest.mark.parametrize("groups", [None, (8000, 12000)], ids=["one_group", "two_groups"])
def test_sign_gives_the_smoothed_gradient_within_standard_error(antithetic, groups):
    """One group: the smoothed gradient. Groups are averaged apart and summed, so two groups of
    full-space directions estimate twice the smoothed gradient."""
    sigma, sizes = 0.5, groups or (20000,)
    eps = torch.cat([NoiseSampler(sigma, n, antithetic=antithetic, generator=gen(i)).noise(XS)
                     for i, n in enumerate(sizes)])  # fmt: skip
    grad, stats = vjp(torch.sign, XS, eps, sigma, groups=groups)
    pairs = [n / (2 if antithetic else 1) for n in sizes]
    se = (sign_term_variance(X[0], sigma, antithetic) * sum(1 / p for p in pairs)).sqrt()
    want = len(sizes) * smoothed_sign_grad(X[0], sigma)
    assert torch.all((grad[:, 0] - want).abs() <= Z * se)
    assert stats == ESStats(samples=20000 * 5, dropped=0, value_std=stats.value_std) and stats.value_std > 0


@pytest.mark.parametrize("noise", ["gaussian", "gumbel"])
@pytest.mark.parametrize("reflected", [False, True], ids=["max", "min"])
def test_score_weighting_is_unbiased_on_a_linear_fn(noise, reflected):
    """E[<w, sigma Z> grad nu(Z)] / sigma = w, since E[Z grad nu(Z)^T] = I for every noise."""
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0, 0.0]], dtype=torch.float64)
    dist = Reflected(NOISES[noise]) if reflected else NOISES[noise]
    s, sigma = 100_000, 0.3
    eps = NoiseSampler(sigma, s, generator=gen(2), noise=dist).noise(X)
    score = dist.score(eps)
    grad, _ = vjp(lambda t: t @ w.T, X, eps, sigma, score=score)
    terms = (eps[:, 0] @ w[0]).unsqueeze(1) * score[:, 0]  # (S, n): the summands, times sigma / sigma
    se = terms.std(dim=0) / s**0.5
    assert torch.all((grad[0] - w[0]).abs() <= Z * se)


def test_per_coordinate_and_relative_scales_divide_per_coordinate():
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0, 0.0]], dtype=torch.float64)
    sigma = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5], dtype=torch.float64)
    eps = NoiseSampler(1.0, 4, antithetic=True, generator=gen(3)).noise(X)
    # a linear fn with antithetic pairs: exactly (1/S) sum eps eps^T (sigma * w) / sigma
    grad, _ = vjp(lambda t: t @ w.T, X, eps, sigma)
    flat = eps.reshape(4, -1)
    assert torch.allclose(grad[0], (flat.T @ flat / 4) @ (sigma * w[0]) / sigma)
    zero = X.clone()
    zero[0, 2] = 0.0  # Relative: a zero coordinate is not perturbed and gets a zero gradient
    grad, _ = vjp(lambda t: t @ w.T, zero, eps, 0.2 * zero.abs())
    assert grad[0, 2] == 0 and torch.isfinite(grad).all()


def test_a_batch_item_without_any_usable_sample_is_a_blackbox_error():
    def fn(t):
        out = t.clone()
        out[t[:, 0] > 0.0] = float("nan")  # every sample of item 1 (x = 5) is NaN
        return out

    x = torch.tensor([[-5.0], [5.0]], dtype=torch.float64)
    eps = NoiseSampler(0.1, 4, generator=gen(0)).noise(x)
    with pytest.raises(BlackBoxError, match=r"every perturbed sample of ES samples was NaN/inf for batch item\(s\) \[1\]"):
        smoothed_vjp(BlackBox(fn, nonfinite="drop"), x, x, torch.ones_like(x), eps, 0.1)


def flaky(t):
    """sin, with NaN in a quarter of the perturbed samples (never in the forward batch of 3)."""
    out = torch.sin(t)
    if len(t) > 3:
        out[::4] = float("nan")
    return out


@pytest.mark.parametrize(
    "make",
    [
        lambda: Perturbed(sigma=0.3, samples=12, generator=gen(0)),
        lambda: Perturbed(sigma=0.3, samples=12, noise="gumbel", output="smoothed", generator=gen(0)),
        lambda: GuidedES(lambda x, v: torch.cos(x), sigma=0.3, samples=12, variant="unbiased", generator=gen(0)),
    ],
    ids=["perturbed", "perturbed_smoothed", "guided_es"],
)
def test_every_smoothing_estimator_drops_nan_samples_and_reports_them(make):
    """Perturbed and GuidedES raised ValueError on nonfinite='drop'; now they drop as ES does."""
    est = make()
    seen = []
    register = est.register_sample_hook if isinstance(est, GuidedES) else est.register_fit_hook
    register(lambda e, s: seen.append(s))
    x = torch.randn(3, 4, generator=gen(1), dtype=torch.float64, requires_grad=True)
    Bypass(flaky, est, nonfinite="drop")(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    stats = est.sample_stats if isinstance(est, GuidedES) else est.stats
    assert (stats.dropped, stats.samples) == (9, 27) and seen == [stats]


def test_guided_es_takes_tensor_and_relative_sigma_and_stays_unbiased():
    w = torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64)
    x = torch.tensor([[0.5, -1.0, 2.0, 1.0]], dtype=torch.float64)
    for sigma in (torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), Relative(0.2)):
        est = GuidedES(lambda t, v: torch.ones_like(t), sigma=sigma, samples=200_000,
                       variant="unbiased", generator=gen(4))  # fmt: skip
        xx = x.clone().requires_grad_(True)
        Bypass(lambda t: t @ w.T, est)(xx).sum().backward()
        assert torch.allclose(xx.grad, w, atol=0.2), sigma  # about 5 standard errors


def test_antithetic_pairs_need_a_symmetric_noise():
    with pytest.raises(ValueError, match=r"antithetic=True needs a symmetric noise .* Gumbel\(\): pass antithetic=False"):
        Perturbed(sigma=1.0, samples=4, noise="gumbel", antithetic=True)
    est = Perturbed(sigma=1.0, samples=4, antithetic=True, generator=gen(0))
    eps = est.sampler.noise(torch.zeros(2, 3))
    assert torch.equal(eps[2:], -eps[:2])


def test_sampler_draws_inside_and_outside_given_directions():
    basis = torch.linalg.qr(torch.randn(2, 6, 2, generator=gen(5), dtype=torch.float64))[0]
    sampler = NoiseSampler(1.0, 6, antithetic=True, generator=gen(6))
    inside, outside = sampler.within(basis, 6), sampler.outside(basis, 4)
    assert inside.shape == (6, 2, 6) and outside.shape == (4, 2, 6)
    project = lambda d: torch.einsum("bnk,bmk,sbm->sbn", basis, basis, d)  # noqa: E731
    assert torch.allclose(project(inside), inside) and torch.allclose(project(outside), torch.zeros_like(outside))
    assert torch.equal(inside[3:], -inside[:3])


def test_groups_must_cover_the_samples():
    eps = NoiseSampler(0.1, 4, generator=gen(0)).noise(XS)
    with pytest.raises(ValueError, match=r"groups must be positive sample counts summing to S = 4; got \(1, 2\)"):
        vjp(torch.sign, XS, eps, 0.1, groups=(1, 2))


def test_weights_built_by_hand_are_checked_before_combine():
    """A plugin may build ``Weights`` itself: empty groups are refused there, not by an assert."""
    stats = ESStats(samples=4, dropped=0, value_std=0.0)
    values = torch.ones(4, 2)
    with pytest.raises(ValueError, match=r"groups must be positive sample counts summing to S = 4; got \(\)"):
        Weights(values, (), (), stats)
    with pytest.raises(ValueError, match=r"counts must hold one count per group \(2\); got 1"):
        Weights(values, (2, 2), (2,), stats)
    weights = Weights(values, (1, 3), (1, 3), stats)
    score = torch.arange(8.0).reshape(4, 2)
    expected = (score[0] / 1 + score[1:].sum(0) / 3) / 0.5
    assert torch.allclose(combine(weights, score, 0.5), expected)
