"""Closed forms for ES on ``sign(x)``, shared by the ES and check_gradient tests.

A stochastic check allows ``Z`` standard errors per entry. With a fixed seed the outcome is
deterministic; ``Z = 4.5`` means that a correct estimator would fail for fewer than 1 in 10^4
seeds per entry (Gaussian limit), while a biased one (wrong scale, missing 1/sigma, wrong sign)
misses by many SEs.
"""

from __future__ import annotations

import torch
from scipy.stats import norm

Z = 4.5


def smoothed_sign_grad(x, sigma):
    """d/dx E[sign(x + sigma e)] = d/dx (2 Phi(x/sigma) - 1) = 2 phi(x/sigma) / sigma."""
    return torch.from_numpy(2 * norm.pdf(x.numpy() / sigma) / sigma)


def sign_term_variance(x, sigma, antithetic):
    """Variance of one independent term of the ES sum for sign at x != 0, with baseline.

    a = |x|/sigma, T = a phi(a) + 1 - Phi(a) = E[e^2 1{e > a}].
    * antithetic pair: h = |e| 1{|e| > a} / sigma, E[h^2] = 2 T / sigma^2;
    * single sample:   t = 2 |e| 1{e beyond -x/sigma} / sigma, E[t^2] = 4 T / sigma^2.
    Both have mean 2 phi(a) / sigma.
    """
    a = x.abs().numpy() / sigma
    tail = a * norm.pdf(a) + norm.sf(a)
    second = (2 if antithetic else 4) * tail / sigma**2
    return torch.from_numpy(second) - smoothed_sign_grad(x, sigma) ** 2
