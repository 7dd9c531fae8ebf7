"""ES against closed forms (STYLE point 9).

Tolerances for stochastic checks come from the estimator's standard error (SE), worked out in
closed form for each function (``closed_forms.py``); a check allows ``Z`` standard errors per
entry.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffbypass import ES, BlackBoxError, Bypass, NoiseSampler

from .closed_forms import Z, sign_term_variance, smoothed_sign_grad
from .registry import gen


def es_grad(fn, est, x, v=None, **bypass_kw):
    xx = x.detach().clone().requires_grad_(True)
    y = Bypass(fn, est, **bypass_kw)(xx)
    y.backward(torch.ones_like(y) if v is None else v)
    return xx.grad


# ---------------------------------------------------------------------------------- linear fn
W = torch.randn(3, 5, generator=gen(0), dtype=torch.float64)
X = torch.randn(4, 5, generator=gen(1), dtype=torch.float64)
V = torch.randn(4, 3, generator=gen(2), dtype=torch.float64)
TRUE_GRAD = V @ W  # d<v, W x>/dx


def linear(x):
    return x @ W.T + 3.0  # the offset matters only without baseline and without antithetic


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "plain"])
@pytest.mark.parametrize("baseline", [True, False], ids=["baseline", "nobaseline"])
def test_linear_fn_is_exact_up_to_the_noise_sample_covariance(antithetic, baseline):
    """For f(x) = W x + c the estimate is exactly  C_hat W^T v  (+ a known mean-noise term).

    With f linear, <v, f(x + s e)> - b = <v, f(x)> - b + s <W^T v, e>, so
        g_hat = C_hat W^T v + (<v, f(x)> - b) / s * mean(e),   C_hat = mean(e e^T).
    The noise is redrawn from the same seed; the only slack is float64 rounding (1e-9).
    """
    s, samples = 0.1, 64
    est = ES(sigma=s, samples=samples, antithetic=antithetic, baseline=baseline, generator=gen(7))
    g = es_grad(linear, est, X, V)
    eps = NoiseSampler(s, samples, antithetic=antithetic, generator=gen(7)).noise(X)  # (S, B, d)
    c_hat = torch.einsum("sbi,sbj->bij", eps, eps) / samples
    want = torch.einsum("bij,bj->bi", c_hat, TRUE_GRAD)
    if not baseline:
        offset = (V * linear(X)).sum(1, keepdim=True)
        want = want + offset / s * eps.mean(0)
    torch.testing.assert_close(g, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "plain"])
def test_linear_fn_gives_its_gradient_within_standard_error(antithetic):
    """Entry i of  e (e . g)  has variance |g|^2 + g_i^2 for e ~ N(0, I); antithetic pairs repeat
    the same e e^T, so they count as S/2 independent samples."""
    samples = 2000
    est = ES(sigma=0.1, samples=samples, antithetic=antithetic, generator=gen(8))
    g = es_grad(linear, est, X, V)
    effective = samples // 2 if antithetic else samples
    se = ((TRUE_GRAD**2).sum(1, keepdim=True) + TRUE_GRAD**2).sqrt() / math.sqrt(effective)
    assert bool(((g - TRUE_GRAD).abs() <= Z * se).all()), ((g - TRUE_GRAD) / se).abs().max()


# ---------------------------------------------------------------------------------- sign(x)
SIGMA = 0.5
XS = torch.tensor([-1.5, -0.8, -0.3, 0.2, 0.6, 1.1, 2.0], dtype=torch.float64).reshape(-1, 1)


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "plain"])
def test_sign_gives_the_smoothed_gradient(antithetic):
    samples = 4000
    est = ES(sigma=SIGMA, samples=samples, antithetic=antithetic, generator=gen(11))
    g = es_grad(torch.sign, est, XS)
    terms = samples // 2 if antithetic else samples
    se = (sign_term_variance(XS, SIGMA, antithetic) / terms).sqrt()
    want = smoothed_sign_grad(XS, SIGMA)
    assert bool(((g - want).abs() <= Z * se).all()), ((g - want) / se).abs().max()


@pytest.mark.parametrize("antithetic", [True, False], ids=["antithetic", "plain"])
def test_sign_estimate_is_unbiased_across_seeds(antithetic):
    """Mean over N seeds of a 4-sample estimate -> 2 phi(x/sigma)/sigma within Z SE of the mean;
    x = 2 is left out: at 4 sigma a 4-sample estimate is almost always 0.

    Where flips are common (|x| <= 0.6, i.e. |x|/sigma <= 1.2) the spread across seeds must also
    match the closed-form per-seed SE: the terms there have kurtosis below ~4, so the sample std
    of 400 seeds has a relative SE of about 0.5 sqrt(3/400) ~ 4%, and the band of +-25% is ~5 SE.
    (Further out flips are rare and the sample std is too heavy-tailed to test this way.)"""
    seeds, samples = 400, 4
    xs = XS[:-1]
    est_per_seed = torch.stack([
        es_grad(torch.sign, ES(sigma=SIGMA, samples=samples, antithetic=antithetic,
                               generator=gen(1000 + k)), xs)
        for k in range(seeds)
    ])  # fmt: skip
    terms = samples // 2 if antithetic else samples
    per_seed_se = (sign_term_variance(xs, SIGMA, antithetic) / terms).sqrt()
    want = smoothed_sign_grad(xs, SIGMA)
    mean = est_per_seed.mean(0)
    assert bool(((mean - want).abs() <= Z * per_seed_se / math.sqrt(seeds)).all())
    ratio = (est_per_seed.std(0) / per_seed_se)[xs.abs() <= 0.6]
    assert bool(((ratio > 0.75) & (ratio < 1.25)).all()), ratio.flatten()


# ---------------------------------------------------------------------------------- shaping
def test_centered_ranks_give_the_gradient_direction():
    """Ranks only keep the order of f(x + s e): the estimate is a direction, not a scale.

    For f(x) = w.x the mean of r(e.w) e is ~0.28 w/|w| (r = centred rank ~ Phi(z) - 1/2 and
    E[(Phi(z) - 1/2) z] = 1/(2 sqrt(pi))), while each of the d - 1 orthogonal entries has SE
    <= sqrt(1/12 / S). With d = 6, S = 200: cosine >= 0.28 / sqrt(0.28^2 + 5/2400) ~ 0.987 on
    average; the threshold 0.95 allows ~4 SE of slack.
    """
    w = torch.tensor([[2.0, -1.0, 0.5, 0.0, 3.0, -0.25]], dtype=torch.float64)
    x = torch.randn(5, 6, generator=gen(3), dtype=torch.float64)
    est = ES(sigma=0.3, samples=200, shaping="centered_ranks", generator=gen(4))
    g = es_grad(lambda t: t @ w.T, est, x)
    cos = torch.nn.functional.cosine_similarity(g, w.expand_as(g), dim=1)
    assert bool((cos >= 0.95).all()), cos


def test_centered_ranks_are_invariant_to_increasing_transforms():
    """Same seed, f and 3 f^3 + 7 (strictly increasing in f): identical estimates."""
    w = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    x = torch.randn(3, 3, generator=gen(5), dtype=torch.float64)

    def make():
        return ES(sigma=0.4, samples=16, shaping="centered_ranks", generator=gen(6))

    g1 = es_grad(lambda t: t @ w.T, make(), x)
    g2 = es_grad(lambda t: 3 * (t @ w.T) ** 3 + 7, make(), x)
    assert torch.equal(g1, g2)


def test_baseline_reduces_variance_with_a_large_offset():
    """Without antithetic pairs, f(x) = w.x + 100 adds (100/sigma) mean(e) to each estimate when
    no baseline is subtracted: variance ~ (100/sigma)^2 / S instead of (|w|^2 + w_i^2) / S,
    about 4000x here. Require at least 100x over 100 seeds."""
    w = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    x = torch.randn(2, 3, generator=gen(9), dtype=torch.float64)

    def spread(baseline):
        gs = torch.stack([
            es_grad(lambda t: t @ w.T + 100.0,
                    ES(sigma=0.5, samples=8, antithetic=False, baseline=baseline,
                       generator=gen(2000 + k)), x)
            for k in range(100)
        ])  # fmt: skip
        return gs.var(0)

    assert bool((spread(True) * 100 < spread(False)).all())


# ---------------------------------------------------------------------------------- faults
def nan_stripes(x):
    """Linear, but NaN where frac(10^4 |x_0|) < 1/4: a pattern unrelated to the noise direction."""
    y = x @ W.T
    bad = torch.frac(1e4 * x[:, :1].abs()) < 0.25
    return torch.where(bad, torch.full_like(y, float("nan")), y)


def test_nonfinite_drop_leaves_nan_samples_out():
    """Exactly C_valid W^T v from the kept samples, and close to the true gradient."""
    x = X.clone()
    x[:, 0] = torch.tensor([0.12345, -0.5055, 0.37775, 1.00005], dtype=torch.float64)
    s, samples = 0.1, 2000
    est = ES(sigma=s, samples=samples, antithetic=False, generator=gen(12))
    g = es_grad(nan_stripes, est, x, V, nonfinite="drop")

    eps = NoiseSampler(s, samples, generator=gen(12)).noise(x)
    valid = torch.isfinite(nan_stripes((x + s * eps).reshape(-1, 5))).all(1).reshape(samples, -1)
    kept = valid.sum(0)
    assert bool((kept < 0.85 * samples).all() and (kept > 0.6 * samples).all())  # ~1/4 dropped
    ev = eps * valid[..., None]
    c_valid = torch.einsum("sbi,sbj->bij", ev, ev) / kept[:, None, None]
    torch.testing.assert_close(g, torch.einsum("bij,bj->bi", c_valid, TRUE_GRAD))
    se = ((TRUE_GRAD**2).sum(1, keepdim=True) + TRUE_GRAD**2).sqrt() / kept[:, None].sqrt()
    assert bool(((g - TRUE_GRAD).abs() <= Z * se).all())


def test_nonfinite_raise_is_the_default_for_es_samples():
    x = X.clone()
    x[:, 0] = 0.12345
    with pytest.raises(BlackBoxError, match=r"NaN/inf value\(s\) in ES samples.*nonfinite='drop'"):
        es_grad(nan_stripes, ES(sigma=0.1, samples=64, generator=gen(0)), x, V)


def test_integer_output_is_a_type_error_with_guidance():
    with pytest.raises(
        TypeError, match=r"ES needs a real-valued fn output.*torch.int64.*Surrogate"
    ):
        Bypass(lambda t: t.argmax(1), ES(sigma=1.0, samples=2))(
            torch.randn(2, 3, generator=gen(107))
        )


def test_properties_and_repr():
    est = ES(sigma=0.25, samples=6, antithetic=True, shaping="centered_ranks")
    assert (est.sigma, est.samples) == (0.25, 6)
    assert "sigma=0.25, samples=6, antithetic=True" in repr(est)
