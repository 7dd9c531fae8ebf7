"""Perturbed optimizers and the Fenchel-Young loss against closed forms (Berthet et al., 2020).

With Gumbel noise and sigma = 1 the perturbed argmax is exactly the softmax (the Gumbel-max
trick), so E[onehot(argmax(theta + Z))] = softmax(theta), its Jacobian is the softmax Jacobian,
and E[max_i (theta_i + Z_i)] = logsumexp(theta) + Euler's gamma. Monte-Carlo checks allow
Z = 4.5 standard errors per entry (``closed_forms.Z``), the SE measured from repeated estimates.
"""

from __future__ import annotations

import math

import pytest
import torch

from diffbypass import BlackBoxError, Bypass, FenchelYoungLoss, Perturbed

from .closed_forms import Z
from ._fns import onehot_max, onehot_min

EULER_GAMMA = 0.5772156649015329
THETA = torch.tensor([[0.0, 1.0, 2.0, -0.5], [0.3, 0.3, -1.0, 0.0]], dtype=torch.float64)
V = torch.tensor([[1.0, -1.0, 0.5, 2.0], [0.0, 1.0, -2.0, 0.5]], dtype=torch.float64)


def softmax_vjp(theta, v):
    th = theta.detach().clone().requires_grad_(True)
    th.softmax(-1).backward(v)
    return th.grad


def repeated(estimate, repeats=10):
    """Mean and standard error of ``repeats`` independent estimates."""
    runs = torch.stack([estimate(r) for r in range(repeats)])
    return runs.mean(0), runs.std(0) / math.sqrt(repeats)


def test_gumbel_perturbed_argmax_is_the_softmax():
    def forward(r):
        est = Perturbed(sigma=1.0, samples=4000, noise="gumbel", output="smoothed",
                        generator=torch.Generator().manual_seed(r))  # fmt: skip
        return Bypass(onehot_max, est)(THETA)

    mean, se = repeated(forward)
    want = THETA.softmax(-1)
    assert torch.all((mean - want).abs() <= Z * se + 1e-12), (mean, want)
    # a single 40,000-sample average is within 0.01 of the softmax (Bernoulli SE <= 0.0025)
    est = Perturbed(sigma=1.0, samples=40000, noise="gumbel", output="smoothed",
                    generator=torch.Generator().manual_seed(99))  # fmt: skip
    one = Bypass(onehot_max, est)(THETA)
    assert torch.allclose(one, want, atol=0.01)


@pytest.mark.parametrize("output", ["exact", "smoothed"])
def test_gumbel_perturbed_argmax_gradient_is_the_softmax_jacobian(output):
    def grad(r):
        layer = Bypass(onehot_max, Perturbed(sigma=1.0, samples=4000, noise="gumbel",
                       output=output, generator=torch.Generator().manual_seed(r)))  # fmt: skip
        th = THETA.clone().requires_grad_(True)
        y = layer(th)
        if output == "exact":
            assert torch.equal(y, onehot_max(THETA))
        y.backward(V)
        return th.grad

    mean, se = repeated(grad)
    want = softmax_vjp(THETA, V)
    assert torch.all((mean - want).abs() <= Z * se + 1e-12), (mean, want)


def test_gumbel_min_sense_gives_softmax_of_minus_theta():
    est = Perturbed(sigma=1.0, samples=40000, noise="gumbel", output="smoothed", sense="min",
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.allclose(Bypass(onehot_min, est)(THETA), (-THETA).softmax(-1), atol=0.01)


def test_gaussian_perturbed_is_unbiased_on_a_linear_fn():
    a = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def grad(r):
        layer = Bypass(lambda x: x @ a.T, Perturbed(sigma=0.7, samples=2000,
                       generator=torch.Generator().manual_seed(r)))  # fmt: skip
        x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
        layer(x).backward(V)
        return x.grad

    mean, se = repeated(grad)
    assert torch.all((mean - V @ a).abs() <= Z * se + 1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fenchel_young_loss_value_and_gradient(reduction):
    target = onehot_max(torch.tensor([[0.0, 0, 0, 1], [1, 0, 0, 0]], dtype=torch.float64))

    def run(r):
        loss = FenchelYoungLoss(onehot_max, sigma=1.0, samples=4000, noise="gumbel",
                                reduction=reduction, generator=torch.Generator().manual_seed(r))
        th = THETA.clone().requires_grad_(True)
        value = loss(th, target)
        weights = torch.tensor([1.0, 2.0], dtype=torch.float64)
        (value * weights).sum().backward() if reduction == "none" else value.backward()
        return torch.cat([value.reshape(-1), th.grad.flatten()])

    mean, se = repeated(run)
    per_item = torch.logsumexp(THETA, -1) + EULER_GAMMA - (THETA * target).sum(-1)
    grad = THETA.softmax(-1) - target
    if reduction == "none":
        want = torch.cat([per_item, (grad * torch.tensor([[1.0], [2.0]])).flatten()])
    else:
        scale = 0.5 if reduction == "mean" else 1.0
        want = torch.cat([per_item.sum().reshape(1) * scale, grad.flatten() * scale])
    assert torch.all((mean - want).abs() <= Z * se + 1e-9), (mean, want)


def test_fenchel_young_min_sense_gradient_is_target_minus_perturbed_argmin():
    target = onehot_min(THETA)
    loss = FenchelYoungLoss(onehot_min, sigma=1.0, samples=40000, noise="gumbel", sense="min",
                            generator=torch.Generator().manual_seed(3))  # fmt: skip
    th = THETA.clone().requires_grad_(True)
    loss(th, target).backward()
    assert torch.allclose(th.grad, (target - (-THETA).softmax(-1)) / 2, atol=0.01)
    assert loss.blackbox.instances == 40000 * 2


def test_perturbed_calls_fn_s_times_in_backward_and_once_in_forward():
    layer = Bypass(onehot_max, Perturbed(sigma=1.0, samples=6, generator=torch.Generator()))
    th = THETA.clone().requires_grad_(True)
    y = layer(th)
    assert layer.blackbox.instances == 2
    y.backward(V)
    assert layer.blackbox.instances == 2 + 6 * 2


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="noise must be one of"):
        Perturbed(sigma=1.0, samples=4, noise="cauchy")
    with pytest.raises(ValueError, match="output must be one of"):
        Perturbed(sigma=1.0, samples=4, output="mean")
    loss = FenchelYoungLoss(onehot_max, sigma=1.0, samples=2)
    with pytest.raises(ValueError, match=r"target must have theta's shape \(2, 4\); got \(2, 3\)"):
        loss(THETA, torch.zeros(2, 3))


@pytest.mark.parametrize("noise", ["gaussian", "gumbel"])
def test_baseline_keeps_the_mean_and_cuts_the_variance(noise):
    a = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    offset = torch.full((4,), 50.0, dtype=torch.float64)  # a large constant output: pure noise

    def runs(baseline):
        layer = Bypass(lambda x: x @ a.T + offset, Perturbed(sigma=0.7, samples=50, noise=noise,
                       baseline=baseline, generator=torch.Generator().manual_seed(5)))  # fmt: skip
        out = []
        for _ in range(40):
            x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
            layer(x).backward(V)
            out.append(x.grad)
        return torch.stack(out)

    with_b, without = runs(True), runs(False)
    assert float(with_b.var(0).mean()) < 0.05 * float(without.var(0).mean())
    if noise == "gaussian":  # exact in expectation on a linear fn
        se = with_b.std(0) / math.sqrt(len(with_b))
        assert torch.all((with_b.mean(0) - V @ a).abs() <= Z * se + 1e-9)


def test_fenchel_young_refuses_bad_theta_and_target_with_a_clear_message():
    loss = FenchelYoungLoss(onehot_max, sigma=1.0, samples=4, generator=torch.Generator().manual_seed(0))
    target = onehot_max(THETA)
    with pytest.raises(TypeError, match=r"theta must be a floating-point tensor; got torch.int64: pass theta.float\(\)"):
        loss(THETA.long(), target)
    bad = target.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"target must be finite; got 1 NaN/inf value\(s\) in batch item\(s\) \[1\]"):
        loss(THETA, bad)
    with pytest.raises(ValueError, match=r"theta must be finite; got 1 NaN/inf value\(s\) in batch item\(s\) \[0\]"):
        loss(torch.where(THETA == 2.0, math.inf, THETA), target)


def nan_sometimes(t):
    out = onehot_max(t)
    out[::3] = float("nan")  # a third of the perturbed samples
    return out


def test_fenchel_young_nan_from_fn_names_its_own_option_and_drop_averages_the_rest():
    """The message advised Bypass's nonfinite='drop', which FenchelYoungLoss did not take."""
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    loss = FenchelYoungLoss(nan_sometimes, sigma=1.0, samples=6, generator=gen())
    with pytest.raises(BlackBoxError, match=r"fn returned NaN/inf in Fenchel-Young samples: 4 of 12 .*"
                       r"pass nonfinite='drop' to FenchelYoungLoss to leave such samples out"):
        loss(THETA, onehot_max(THETA))
    theta = THETA.clone().requires_grad_(True)
    dropping = FenchelYoungLoss(nan_sometimes, sigma=1.0, samples=6, nonfinite="drop", generator=gen())
    value = dropping(theta, onehot_max(THETA))
    value.backward()
    # the same draws evaluated without NaN, averaged over the samples that were kept
    eps = FenchelYoungLoss(onehot_max, sigma=1.0, samples=6, generator=gen()).sampler.noise(THETA)
    ys = onehot_max((THETA + eps).reshape(12, 4)).reshape(6, 2, 4)
    keep = torch.ones(12, dtype=torch.bool)
    keep[::3] = False
    keep = keep.reshape(6, 2)
    want = torch.stack([ys[keep[:, b], b].mean(0) for b in range(2)]) - onehot_max(THETA)
    assert torch.allclose(theta.grad, want / 2) and torch.isfinite(value)
