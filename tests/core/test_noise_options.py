"""Noise options (per-coordinate and relative sigma), instance counts, StraightThrough(scale)."""

from __future__ import annotations

import pytest
import torch

from diffbypass import ES, Bypass, NoiseSampler, Relative, StraightThrough

from .closed_forms import Z, sign_term_variance, smoothed_sign_grad


def test_per_coordinate_sigma_matches_the_sign_closed_form():
    sigma = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
    x = torch.tensor([[0.2, -0.5, 1.0]], dtype=torch.float64)
    s = 20000
    est = ES(sigma=sigma, samples=s, generator=torch.Generator().manual_seed(0))
    layer = Bypass(torch.sign, est)
    xx = x.clone().requires_grad_(True)
    layer(xx).sum().backward()
    want = torch.stack([smoothed_sign_grad(x[0, i : i + 1], float(sigma[i]))[0] for i in range(3)])
    se = torch.stack(
        [sign_term_variance(x[0, i : i + 1], float(sigma[i]), True)[0] for i in range(3)]
    ).sqrt() / (s / 2) ** 0.5
    assert torch.all((xx.grad[0] - want).abs() <= Z * se)


def test_relative_sigma_scales_with_x_and_leaves_zeros_alone():
    sampler = NoiseSampler(Relative(0.1), 4, generator=torch.Generator().manual_seed(0))
    x = torch.tensor([[0.0, 2.0, -10.0]])
    xs, eps = sampler.perturb(x)
    assert torch.allclose(xs - x, eps * torch.tensor([0.0, 0.2, 1.0]))
    w = torch.tensor([[1.0, -2.0, 3.0]])
    layer = Bypass(lambda t: t @ w.T, ES(sigma=Relative(0.1), samples=4000,
                   generator=torch.Generator().manual_seed(1)))  # fmt: skip
    xx = x.clone().requires_grad_(True)
    layer(xx).sum().backward()
    assert xx.grad[0, 0] == 0  # not perturbed: no information, zero gradient
    assert torch.allclose(xx.grad[0, 1:], w[0, 1:], atol=0.2)


def test_sigma_errors():
    with pytest.raises(ValueError, match="sigma must be finite and > 0 in every coordinate"):
        NoiseSampler(torch.tensor([1.0, 0.0]), 2)
    with pytest.raises(ValueError, match="Relative.sigma must be"):
        Relative(-1.0)
    s = NoiseSampler(torch.tensor([1.0, 2.0]), 2)
    with pytest.raises(ValueError, match=r"does not broadcast to the input items' shape \(3,\)"):
        s.perturb(torch.zeros(1, 3))


def test_instances_count_inputs_not_calls():
    layer = Bypass(torch.sign, ES(sigma=0.5, samples=8), max_batch=10)
    x = torch.randn(3, 2, requires_grad=True)
    layer(x).sum().backward()
    assert layer.blackbox.instances == 3 + 8 * 3
    assert layer.blackbox.calls == 1 + 3  # 24 perturbed inputs in chunks of 10


def test_straight_through_scale():
    x = torch.tensor([[0.2, -1.3]], requires_grad=True)
    Bypass(torch.round, StraightThrough(scale=-1))(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([[-1.0, -1.0]]))
    with pytest.raises(ValueError, match="scale must be non-zero"):
        StraightThrough(scale=0)
