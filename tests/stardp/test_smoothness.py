"""The smoothness penalty lam * |v_n - v_(n+1 mod N)|: brute force for the numba, torch and soft
DPs, identities, lam = 0 unchanged, the soft energy's gradient in lam, StarDP's second input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from diffbypass_stardp import (
    HardMin,
    StarDP,
    _config,
    dp_solve,
    dp_torch,
    radial_difference,
    segment_stars,
    soft_dp,
)

from ._helpers import brute_force, brute_soft, energies, is_feasible, variation
from .test_dp import SETTINGS, small_problems

#: Dyadic weights: every penalised sum of small integer costs is exact, so ties are exact too.
WEIGHTS = [0.25, 0.5, 1.0, 1.5, 3.0]


@st.composite
def penalised_problems(draw):
    """``small_problems`` plus a weight: one shared number, or one per contour."""
    cost, delta = draw(small_problems())
    if draw(st.booleans()):
        lam = draw(st.sampled_from(WEIGHTS))
        per_item = np.full(len(cost), lam)
    else:
        per_item = np.array(draw(st.lists(st.sampled_from([0.0, *WEIGHTS]), min_size=len(cost),
                                          max_size=len(cost))))
        lam = per_item
    return cost, delta, lam, per_item


@SETTINGS
@given(penalised_problems())
def test_numba_matches_brute_force_including_tie_breaking(problem):
    cost, delta, lam, per_item = problem
    got = dp_solve(cost, delta, lam)
    for b in range(len(cost)):
        best, lexmin = brute_force(cost[b], delta, per_item[b])
        assert is_feasible(got[b], delta)
        assert energies(cost[b], got[b][None], per_item[b])[0] == best
        np.testing.assert_array_equal(got[b], lexmin)


@SETTINGS
@given(penalised_problems())
def test_torch_reference_finds_the_penalised_optimum(problem):
    cost, delta, lam, per_item = problem
    lam = torch.from_numpy(lam) if isinstance(lam, np.ndarray) else lam
    value, v = dp_torch(torch.from_numpy(cost), delta, HardMin(), lam)
    for b in range(len(cost)):
        best, _ = brute_force(cost[b], delta, per_item[b])
        assert float(value[b]) == best
        assert is_feasible(v[b].numpy(), delta)
        assert energies(cost[b], v[b].numpy()[None], per_item[b])[0] == best


def test_penalty_changes_the_answer_and_counts_the_closing_pair():
    # (3, 2, 1, 2) costs -11 with 4 unit steps, the last one on the closing pair (line 3, line 0);
    # the circle (1, 1, 1, 1) costs -10
    cost = np.zeros((1, 4, 5))
    cost[0, :, 3] = -1.0
    cost[0, 2, 1] = -10.0
    np.testing.assert_array_equal(dp_solve(cost, 1, 0.2), [[3, 2, 1, 2]])  # -11 + 0.8 < -10
    np.testing.assert_array_equal(dp_solve(cost, 1, 0.3), [[1, 1, 1, 1]])  # -11 + 1.2 > -10
    # a contour that only leaves the circle on the closing pair pays for it
    cost = np.zeros((1, 3, 3))
    cost[0, 0, 0] = cost[0, 1, 0] = cost[0, 2, 1] = -1.0  # the open chain (0, 0, 1) costs -3
    assert energies(cost[0], np.array([[0, 0, 1]]), 1.0)[0] == -3.0 + 2.0  # 1 -> 0 closes
    np.testing.assert_array_equal(dp_solve(cost, 1, 0.75), [[0, 0, 0]])  # -2 < -3 + 1.5


@pytest.mark.parametrize("delta", [1, 2, 5])
def test_a_large_weight_gives_the_best_constant_contour(delta):
    # a non-constant closed contour varies by at least 2; with 2 lam > N (max c - min c) the
    # penalty outweighs any gain, so the answer is the delta = 0 one
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(16, 9, 11))
    lam = 9 * float(cost.max() - cost.min())
    np.testing.assert_array_equal(dp_solve(cost, delta, lam), dp_solve(cost, 0))
    value, v = dp_torch(torch.from_numpy(cost), delta, lam=lam)
    np.testing.assert_array_equal(v.numpy(), dp_solve(cost, 0))


@pytest.mark.parametrize("delta", [1, 2])
def test_numba_and_torch_agree_on_thesis_sizes(delta):
    rng = np.random.default_rng(1)
    cost = torch.from_numpy(rng.normal(size=(12, 25, 65)))  # float64: a unique optimum
    lam = torch.from_numpy(rng.uniform(0.0, 0.5, size=12))
    value, v = dp_torch(cost, delta, lam=lam)
    np.testing.assert_array_equal(dp_solve(cost, delta, lam).numpy(), v.numpy())
    e = cost.gather(2, v[:, :, None])[:, :, 0].sum(1) + lam * torch.from_numpy(variation(v.numpy()))
    torch.testing.assert_close(value, e)


def test_per_item_weights_across_threads_and_torch_chunks(monkeypatch):
    rng = np.random.default_rng(2)
    cost = rng.normal(size=(70, 12, 9))
    lam = rng.choice([0.0, 0.3, 1.0], size=70)
    one_by_one = np.concatenate([dp_solve(cost[b : b + 1], 1, lam[b]) for b in range(70)])
    monkeypatch.setattr(_config, "THREADS", 3)
    monkeypatch.setattr(_config, "MIN_CHUNK", 8)  # chunks of the batch on the thread pool
    np.testing.assert_array_equal(dp_solve(cost, 1, lam), one_by_one)
    monkeypatch.setattr(_config, "TORCH_CHUNK_BYTES", 1)  # one contour per torch chunk
    _, v = dp_torch(torch.from_numpy(cost), 1, lam=torch.from_numpy(lam))
    np.testing.assert_array_equal(v.numpy(), one_by_one)


def test_zero_weight_is_the_unpenalised_dp_bit_for_bit():
    rng = np.random.default_rng(3)
    cost = rng.normal(size=(8, 25, 65)).astype(np.float32)
    t = torch.from_numpy(cost)
    zeros = np.zeros(8)
    for lam in (0.0, 0, zeros, torch.zeros(8), torch.tensor(0.0)):
        np.testing.assert_array_equal(dp_solve(cost, 1, lam), dp_solve(cost, 1))
    ref_value, ref_v = dp_torch(t, 1)
    for lam in (0.0, torch.zeros(8)):  # a zero tensor takes the penalised path: x + 0 == x
        value, v = dp_torch(t, 1, lam=lam)
        assert torch.equal(value, ref_value) and torch.equal(v, ref_v)
    ref = soft_dp(t[:2], 1, 0.5)
    for got in (soft_dp(t[:2], 1, 0.5, 0.0), soft_dp(t[:2], 1, 0.5, torch.zeros(2))):
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
    g = rng.random((4, 25, 65)).astype(np.float32)
    for box in (StarDP(), StarDP(output="float")):
        np.testing.assert_array_equal(box(g, 0.0), box(g))
        np.testing.assert_array_equal(StarDP(lam=0.0, output=box.output)(g), box(g))


@pytest.mark.parametrize(("n_lines", "m", "delta", "tau", "lam"),
                         [(3, 4, 1, 1.0, 0.5), (5, 4, 1, 0.3, 0.2), (4, 5, 2, 2.0, 1.5),
                          (5, 3, 2, 0.5, 3.0)])
def test_soft_energy_marginals_and_lam_gradient_match_enumeration(n_lines, m, delta, tau, lam):
    rng = np.random.default_rng(4)
    cost = rng.normal(size=(3, n_lines, m))
    weight = torch.tensor(lam, dtype=torch.float64, requires_grad=True)  # shared by the batch
    out = soft_dp(torch.from_numpy(cost), delta, tau, weight)
    (grad,) = torch.autograd.grad(out.energy.sum(), weight)
    expected_grad = 0.0
    for b in range(3):
        z, marg, tv = brute_soft(cost[b], delta, tau, lam)
        assert float(out.energy[b].detach()) == pytest.approx(z, abs=1e-10)
        np.testing.assert_allclose(out.marginals[b].detach().numpy(), marg, atol=1e-10)
        expected_grad += tv  # dE/dlam = E_p[variation], summed over the batch (shared lam)
    assert float(grad) == pytest.approx(expected_grad, abs=1e-9)


def test_soft_lam_gradient_against_finite_differences_and_gradcheck():
    rng = np.random.default_rng(5)
    cost = torch.from_numpy(rng.normal(size=(2, 4, 3)))
    lam = torch.tensor([0.3, 1.2], dtype=torch.float64, requires_grad=True)
    energy = soft_dp(cost, 1, 0.5, lam).energy
    (grad,) = torch.autograd.grad(energy.sum(), lam)
    h = 1e-6
    for b in range(2):
        up, down = lam.detach().clone(), lam.detach().clone()
        up[b] += h
        down[b] -= h
        fd = (soft_dp(cost, 1, 0.5, up).energy[b] - soft_dp(cost, 1, 0.5, down).energy[b]) / (2 * h)
        assert float(grad[b]) == pytest.approx(float(fd), rel=1e-6)
    assert torch.autograd.gradcheck(lambda w: soft_dp(cost, 1, 0.5, w).indices, (lam,))
    both = cost.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c, w: soft_dp(c, 1, 0.5, w).energy, (both, lam))
    assert torch.autograd.gradgradcheck(lambda w: soft_dp(cost, 1, 0.5, w).energy, (lam,))


def test_soft_graph_is_kept_for_lam_only_when_it_requires_grad():
    cost = torch.randn(2, 4, 5)
    assert not soft_dp(cost, 1, 1.0, torch.tensor(0.5)).indices.requires_grad
    lam = torch.tensor(0.5, requires_grad=True)
    out = soft_dp(cost, 1, 1.0, lam)
    assert out.indices.requires_grad and not cost.requires_grad
    out.indices.sum().backward()
    assert lam.grad is not None and torch.isfinite(lam.grad)


def test_stardp_takes_lam_as_a_second_input():
    rng = np.random.default_rng(6)
    g = rng.random((4, 25, 65)).astype(np.float32)
    lam = np.array([0.0, 0.05, 0.2, 1.0])
    cost = radial_difference(g)
    box = StarDP(smoothing=0)
    np.testing.assert_array_equal(box(g, lam), dp_solve(cost, 1, lam))
    np.testing.assert_array_equal(box(g, 0.2), dp_solve(cost, 1, 0.2))
    np.testing.assert_array_equal(StarDP(smoothing=0, lam=0.2)(g), dp_solve(cost, 1, 0.2))
    tensor_out = box(torch.from_numpy(g), torch.tensor(lam, requires_grad=True))
    assert isinstance(tensor_out, torch.Tensor)
    np.testing.assert_array_equal(tensor_out.numpy(), dp_solve(cost, 1, lam))
    assert not np.array_equal(box(g, 1.0), box(g)), "the weight must change some contour"
    assert variation(box(g, 1.0)).sum() < variation(box(g)).sum()
    smooth = StarDP(lam=0.5, delta=2, output="float", smoothing=5)
    assert repr(smooth) == "StarDP(delta=2, smoothing=5, cost='radial_difference', " \
        "output='float', lam=0.5)"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(smooth))(g), smooth(g))


def test_segment_stars_uses_the_weight():
    rng = np.random.default_rng(7)
    maps = rng.random((2, 64, 64)).astype(np.float32)
    centers = torch.tensor([[30.0, 33.0], [31.0, 29.0]])
    plain = segment_stars(maps, centers, StarDP(output="float"), radius=30.0, n_points=30)
    again = segment_stars(maps, centers, StarDP(output="float"), radius=30.0, n_points=30, lam=0.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, again))
    box = StarDP(output="float", lam=0.3)
    smooth = segment_stars(maps, centers, box, radius=30.0, n_points=30)
    np.testing.assert_array_equal(smooth.indices.numpy(), box(plain.warped.numpy()))
    per_item = segment_stars(maps, centers, StarDP(output="float"), radius=30.0, n_points=30,
                             lam=torch.tensor([0.3, 0.3]))
    assert torch.equal(per_item.indices, smooth.indices)


@pytest.mark.parametrize(
    ("lam", "message"),
    [
        (-1.0, r"lam must be a finite number >= 0; got -1.0"),
        (float("nan"), r"lam must be a finite number >= 0; got nan"),
        (float("inf"), r"lam must be a finite number >= 0; got inf"),
        ("0.5", r"lam must be a finite number >= 0; got '0.5'"),
        (True, r"lam must be a finite number >= 0; got True"),
        (np.zeros((3, 1)), r"lam must be a number or a tensor of shape \(\) \(shared\) or \(B,\) "
                           r"= \(3,\) \(one per contour\); got shape \(3, 1\)"),
        (torch.zeros(2), r"got shape \(2,\)"),
        (torch.tensor([0.0, -0.5, 1.0]), r"lam must be finite and >= 0; got -0.5 at index 1"),
        (np.array([0.0, 1.0, np.nan]), r"lam must be finite and >= 0; got nan at index 2"),
        (torch.tensor(1j), r"lam must hold real numbers; got dtype torch.complex64"),
        (np.array(True), r"lam must hold real numbers; got dtype bool"),
    ],
)
@pytest.mark.parametrize(
    "solve",
    [dp_solve, lambda c, d, w: dp_torch(torch.from_numpy(c), d, lam=w),
     lambda c, d, w: soft_dp(c, d, 1.0, w), lambda c, d, w: StarDP(delta=d)(c, w)],
    ids=["dp", "torch", "soft", "stardp"],
)
def test_bad_weights_are_named(solve, lam, message):
    with pytest.raises(ValueError, match=message):
        solve(np.zeros((3, 5, 4)), 1, lam)


def test_bad_constructor_weight_and_overflowing_penalties():
    with pytest.raises(ValueError, match=r"lam must be a finite number >= 0; got -0.1"):
        StarDP(lam=-0.1)
    with pytest.raises(ValueError, match=r"lam \* delta must be at most .* for N=5 lines .*"
                                         r"got lam = 1e\+307, delta = 1"):
        dp_solve(np.zeros((1, 5, 4)), 1, 1e307)
    with pytest.raises(ValueError,
                       match=r"lam \* delta must be at most .*got lam = 1e\+36, delta = 3"):
        dp_torch(torch.zeros(1, 5, 4), 3, lam=1e36)


def test_total_variation_does_not_increase_with_the_weight():
    # optimality at lam1 < lam2 gives (lam2 - lam1) (TV(v2) - TV(v1)) <= 0 for any optima
    rng = np.random.default_rng(8)
    cost = rng.normal(size=(20, 25, 65))
    tv = np.stack([variation(dp_solve(cost, 2, lam)) for lam in (0.0, 0.05, 0.2, 0.5, 2.0)])
    assert (np.diff(tv, axis=0) <= 0).all()
    assert tv[0].sum() > tv[-1].sum()
