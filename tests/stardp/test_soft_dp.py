"""Soft DP: brute-force log-sum-exp, the zero-temperature limit, marginals and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass_stardp import HardMin, SoftMin, dp_solve, dp_torch, soft_dp

from ._helpers import brute_soft, energies, feasible_contours


@pytest.mark.parametrize(("n_lines", "m", "delta", "tau"),
                         [(3, 4, 1, 1.0), (5, 4, 1, 0.3), (4, 5, 2, 2.0), (6, 3, 0, 0.5)])
def test_energy_and_marginals_match_enumeration(n_lines, m, delta, tau):
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(3, n_lines, m))
    out = soft_dp(torch.from_numpy(cost), delta, tau)
    for b in range(3):
        z, marg, _ = brute_soft(cost[b], delta, tau)
        assert float(out.energy[b]) == pytest.approx(z, abs=1e-10)
        np.testing.assert_allclose(out.marginals[b].numpy(), marg, atol=1e-10)
        np.testing.assert_allclose(out.indices[b].numpy(), marg @ np.arange(m), atol=1e-10)
    np.testing.assert_allclose(out.marginals.sum(-1).numpy(), 1.0, atol=1e-12)


def test_soft_energy_is_bounded_by_the_hard_minimum():
    rng = np.random.default_rng(1)
    cost = rng.normal(size=(4, 5, 4))
    tau = 0.7
    soft = soft_dp(cost, 1, tau).energy.numpy()
    n_feasible = len(feasible_contours(5, 4, 1))
    hard = np.array([energies(c, dp_solve(c[None], 1))[0] for c in cost])
    assert np.all(soft <= hard + 1e-12)
    assert np.all(soft >= hard - tau * np.log(n_feasible) - 1e-12)


def test_zero_temperature_limit_is_the_hard_dp():
    rng = np.random.default_rng(2)
    cost = rng.normal(size=(8, 6, 5))
    v = feasible_contours(6, 5, 1)
    hard = dp_solve(cost, 1)
    tau = 1e-3
    out = soft_dp(torch.from_numpy(cost), 1, tau)
    checked = 0
    for b in range(len(cost)):
        e = np.sort(energies(cost[b], v))
        if e[1] - e[0] < 50 * tau:  # a near-tie needs a smaller temperature
            continue
        checked += 1
        np.testing.assert_allclose(out.indices[b].numpy(), hard[b], atol=1e-6)
        assert float(out.energy[b]) == pytest.approx(e[0], abs=tau * np.log(len(v)))
    assert checked >= 6


def test_thesis_size_limit_and_hard_semiring_agree():
    rng = np.random.default_rng(3)
    cost = torch.from_numpy(rng.normal(size=(4, 25, 65)))
    hard_value, hard_v = dp_torch(cost, 1, HardMin())
    out = soft_dp(cost, 1, 1e-4)
    torch.testing.assert_close(out.indices, hard_v.double(), atol=1e-3, rtol=0)
    torch.testing.assert_close(out.energy, hard_value, atol=1e-4 * np.log(65) * 25, rtol=0)


def test_gradcheck_indices_and_energy():
    rng = np.random.default_rng(4)
    cost = torch.from_numpy(rng.normal(size=(2, 4, 3))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: soft_dp(c, 1, 0.5).indices, (cost,))
    assert torch.autograd.gradcheck(lambda c: soft_dp(c, 1, 0.5).energy, (cost,))
    assert torch.autograd.gradgradcheck(lambda c: soft_dp(c, 1, 0.5).energy, (cost,))


def test_gradcheck_with_exact_ties():
    # equal costs everywhere: the soft minimum is smooth there even though min is not
    cost = torch.zeros(1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: soft_dp(c, 1, 1.0).indices, (cost,))


def test_graph_is_kept_only_when_cost_requires_grad():
    cost = torch.randn(2, 4, 5)
    out = soft_dp(cost, 1, 1.0)
    assert not out.indices.requires_grad and not out.energy.requires_grad
    cost.requires_grad_(True)
    out = soft_dp(cost, 1, 1.0)
    out.indices.sum().backward()
    assert cost.grad is not None and torch.isfinite(cost.grad).all()


def test_soft_semiring_is_stable_for_large_values_and_small_temperature():
    s = SoftMin(1e-6)
    x = torch.tensor([1e6, 1e6 + 1.0], dtype=torch.float64)
    assert float(s.reduce(x, 0)) == pytest.approx(1e6)
    cost = torch.full((1, 5, 4), 1e3, dtype=torch.float32)
    out = soft_dp(cost, 1, 1e-3)
    assert torch.isfinite(out.indices).all() and torch.isfinite(out.marginals).all()


def test_numpy_and_integer_input():
    cost = np.arange(2 * 4 * 3).reshape(2, 4, 3) % 5
    out = soft_dp(cost, 1, 1.0)
    assert out.indices.dtype == torch.get_default_dtype()
    ref = soft_dp(torch.from_numpy(cost.astype(np.float32)), 1, 1.0)
    torch.testing.assert_close(out.indices, ref.indices)


def test_a_number_penalty_keeps_the_costs_precision():
    # regression: a float lam went through float32 before reaching float64 costs
    rng = np.random.default_rng(5)
    cost = torch.from_numpy(rng.normal(size=(2, 5, 4)))
    exact = soft_dp(cost, 1, 0.7, torch.tensor(0.3, dtype=torch.float64))
    for lam in (0.3, np.float64(0.3), np.array([0.3, 0.3])):
        out = soft_dp(cost, 1, 0.7, lam)
        assert torch.equal(out.energy, exact.energy) and torch.equal(out.marginals, exact.marginals)
    assert torch.equal(dp_torch(cost, 1, lam=0.3)[0], dp_torch(cost, 1, lam=exact.energy.new_tensor(0.3))[0])
