"""The exact cyclic DP (numba) against brute-force enumeration, identities and the torch version."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffbypass_stardp import HardMin, dp_solve, dp_torch

from ._helpers import brute_force, energies, is_feasible

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


@st.composite
def small_problems(draw):
    """Tiny instances with integer-valued costs (many ties) in float32 or float64."""
    n_lines = draw(st.integers(3, 6))
    m = draw(st.integers(2, 6))
    if m**n_lines > 6**5:  # keep the enumeration small
        n_lines = 5
    delta = draw(st.sampled_from([0, 1, 2]))
    batch = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    values = draw(
        st.lists(st.integers(-2, 2), min_size=batch * n_lines * m, max_size=batch * n_lines * m)
    )
    cost = np.array(values, dtype=dtype).reshape(batch, n_lines, m)
    return cost, delta


@SETTINGS
@given(small_problems())
def test_matches_brute_force_including_tie_breaking(problem):
    cost, delta = problem
    got = dp_solve(cost, delta)
    assert got.dtype == np.int64 and got.shape == cost.shape[:2]
    for b in range(len(cost)):
        best, lexmin = brute_force(cost[b], delta)
        assert is_feasible(got[b], delta), "the cyclic constraint must hold, incl. line N-1 -> 0"
        assert energies(cost[b], got[b][None])[0] == best
        np.testing.assert_array_equal(got[b], lexmin)  # lexicographically smallest optimum


@SETTINGS
@given(small_problems())
def test_torch_reference_finds_the_same_energy(problem):
    cost, delta = problem
    value, v = dp_torch(torch.from_numpy(cost), delta, HardMin())
    for b in range(len(cost)):
        best, _ = brute_force(cost[b], delta)
        assert float(value[b]) == best
        assert is_feasible(v[b].numpy(), delta)
        assert energies(cost[b], v[b].numpy()[None])[0] == best


@pytest.mark.parametrize("delta", [0, 1, 3])
def test_constant_cost_gives_a_feasible_contour(delta):
    # every feasible contour is optimal: the answer must be feasible, and the tie rule gives zeros
    cost = np.full((4, 25, 65), 0.5, dtype=np.float32)
    v = dp_solve(cost, delta)
    assert all(is_feasible(row, delta) for row in v)
    np.testing.assert_array_equal(v, 0)


@pytest.mark.parametrize("delta", [4, 5, 100])
def test_unconstrained_delta_is_per_line_argmin(delta):
    rng = np.random.default_rng(0)
    cost = rng.normal(size=(8, 7, 5))
    np.testing.assert_array_equal(dp_solve(cost, delta), cost.argmin(axis=2))


def test_zero_delta_picks_the_best_constant_contour():
    rng = np.random.default_rng(1)
    cost = rng.normal(size=(6, 9, 11))
    v = dp_solve(cost, 0)
    np.testing.assert_array_equal(v, np.repeat(cost.sum(axis=1).argmin(axis=1)[:, None], 9, 1))


def test_matches_brute_force_on_random_floats_with_closure_pressure():
    # a drifting cost: open chains want to spiral, the closure forces them back
    rng = np.random.default_rng(2)
    n_lines, m, delta = 6, 6, 1
    n = np.arange(n_lines)[:, None]
    j = np.arange(m)[None, :]
    cost = -(j == n % m).astype(float) + 0.3 * rng.random((40, n_lines, m))
    got = dp_solve(cost, delta)
    for b in range(len(cost)):
        best, lexmin = brute_force(cost[b], delta)
        assert energies(cost[b], got[b][None])[0] == pytest.approx(best, abs=1e-12)
        np.testing.assert_array_equal(got[b], lexmin)


@pytest.mark.parametrize("delta", [0, 1, 2, 5])
def test_torch_numpy_float32_float64_agree(delta):
    rng = np.random.default_rng(3)
    cost = rng.normal(size=(32, 25, 65))
    ref = dp_solve(cost, delta)
    for variant in (cost.astype(np.float32), torch.from_numpy(cost),
                    torch.from_numpy(cost).float()):
        got = dp_solve(variant, delta)
        got = got.numpy() if isinstance(got, torch.Tensor) else got
        np.testing.assert_array_equal(got, ref)
    t = dp_solve(torch.from_numpy(cost), delta)
    assert t.dtype == torch.int64 and t.device == torch.device("cpu")


@pytest.mark.parametrize("delta", [1, 2])
def test_numba_and_torch_reference_agree_on_thesis_sizes(delta):
    rng = np.random.default_rng(4)
    cost = torch.from_numpy(rng.normal(size=(16, 25, 65)))  # float64: a unique optimum
    value, v = dp_torch(cost, delta)
    np.testing.assert_array_equal(dp_solve(cost, delta).numpy(), v.numpy())
    e = cost.gather(2, v[:, :, None])[:, :, 0].sum(1)
    torch.testing.assert_close(value, e)


def test_deterministic_and_independent_of_batch_composition():
    rng = np.random.default_rng(5)
    cost = rng.integers(0, 3, size=(50, 12, 9)).astype(np.float32)  # many ties
    full = dp_solve(cost, 1)
    np.testing.assert_array_equal(full, dp_solve(cost, 1))
    np.testing.assert_array_equal(full[17:18], dp_solve(cost[17:18], 1))


def test_empty_batch():
    assert dp_solve(np.zeros((0, 5, 4)), 1).shape == (0, 5)
    assert dp_solve(torch.zeros(0, 5, 4), 1).shape == (0, 5)


def test_tie_rule_examples():
    cost = np.zeros((1, 3, 4))
    cost[0, :, 2] = -1.0
    cost[0, :, 1] = -1.0
    np.testing.assert_array_equal(dp_solve(cost, 0), [[1, 1, 1]])  # (1,1,1) before (2,2,2)
    cost = np.zeros((1, 4, 3))
    cost[0, 1, 2] = cost[0, 3, 0] = -1.0  # both bonuses need v0 = v2 = 1 (v0 = 0 cannot reach 2)
    np.testing.assert_array_equal(dp_solve(cost, 1), [[1, 2, 1, 0]])  # smallest v0 = 1, then v1
