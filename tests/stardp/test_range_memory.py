"""Issue #8 (stardp): very large costs give the exact contour or a clear error, never a wrong
contour; the torch DPs solve large batches in memory-bounded chunks with identical results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffbypass_stardp.torch_dp as torch_dp_module
from diffbypass_stardp import _config, dp_solve, dp_torch, soft_dp, torch_dp_bytes

RNG = np.random.default_rng(8)
COST = np.clip(RNG.normal(size=(6, 25, 65)), -3, 3).astype(np.float32)


@pytest.mark.parametrize("exponent", [110, 123, 125])  # max |c| = 3 * 2**e: 3.9e33 .. 1.3e38
def test_float32_costs_near_the_float32_maximum_give_the_exact_contour(exponent):
    big = COST * np.float32(2.0**exponent)  # a power of two: exact, and the same optimum
    assert np.isfinite(big).all() and np.abs(big).max() > 1e33
    np.testing.assert_array_equal(dp_solve(big), dp_solve(COST))
    np.testing.assert_array_equal(dp_solve(torch.from_numpy(big)).numpy(), dp_solve(COST))


def test_float64_costs_whose_sums_overflow_are_rejected():
    with pytest.raises(
        ValueError,
        match=r"cost must have magnitude at most 3\.6e\+306 for dtype float64 and N=25 lines "
        r"\(sums of N costs must stay finite\); got max \|cost\| = 1e\+307; rescale cost",
    ):
        dp_solve(np.full((1, 25, 65), 1e307))
    dp_solve(np.full((1, 25, 65), 1e306))  # inside the documented range


@pytest.mark.parametrize("solve", [dp_torch, soft_dp], ids=["dp_torch", "soft_dp"])
def test_torch_dp_rejects_costs_beyond_its_range(solve):
    big = torch.from_numpy(COST * np.float32(2.0**123))  # 3e37: float32 sums would overflow
    with pytest.raises(
        ValueError,
        match=r"cost must have magnitude at most 4\.25e\+35 for dtype torch\.float32 and N=25 "
        r"lines \(sums of N costs must stay finite\); got max \|cost\| = 3\.19e\+37",
    ):
        solve(big)
    # float64 holds the same costs; the contour is that of the unscaled cost
    _, v = dp_torch(big.double())
    np.testing.assert_array_equal(v.numpy(), dp_torch(torch.from_numpy(COST))[1].numpy())


def test_dp_torch_rejects_nonfinite_costs():
    cost = torch.from_numpy(COST.copy())
    cost[2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"cost must be finite; got NaN or inf"):
        dp_torch(cost)


def test_memory_estimate_per_contour():
    hard = torch_dp_bytes(25, 65, 1, torch.float32, soft=False) / 2**20
    soft = torch_dp_bytes(25, 65, 1, torch.float32, soft=True) / 2**20
    assert 0.25 < hard < 0.35 and 3.5 < soft < 5.0  # measured peak: 0.30 and 3.4 MiB


@pytest.mark.parametrize("delta", [1, 2])
def test_chunked_batches_are_identical(monkeypatch, delta):
    cost = torch.from_numpy(RNG.normal(size=(23, 25, 65)).astype(np.float32))
    hard, soft = dp_torch(cost, delta), soft_dp(cost, delta)
    leaf = cost.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(soft_dp(leaf, delta).indices.sum(), leaf)

    sizes: list[int] = []
    inner = torch_dp_module._dp_torch

    def spy(c, d, s, lam):
        sizes.append(len(c))
        return inner(c, d, s, lam)

    monkeypatch.setattr(torch_dp_module, "_dp_torch", spy)
    budget = 5 * torch_dp_bytes(25, 65, delta, torch.float32, soft=True)
    monkeypatch.setattr(_config, "TORCH_CHUNK_BYTES", budget)
    hard2, soft2 = dp_torch(cost, delta), soft_dp(cost, delta)
    leaf2 = cost.clone().requires_grad_(True)
    (grad2,) = torch.autograd.grad(soft_dp(leaf2, delta).indices.sum(), leaf2)

    # the hard DP (0.3 MiB per contour) fits in one pass; the soft DP runs in chunks of 5
    assert sizes == [23] + 2 * [5, 5, 5, 5, 3]
    assert torch.equal(hard[0], hard2[0]) and torch.equal(hard[1], hard2[1])
    for a, b in zip(soft, soft2):
        assert torch.equal(a, b)
    assert torch.equal(grad, grad2)
