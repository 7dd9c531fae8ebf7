"""The numba DP's lam-free specialisation: chosen whenever no contour is penalised, the same
contours bit for bit, and cached across processes like the rest of the kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffbypass_stardp import _checks, _config, _dp_kernel, dp_solve

from ._helpers import brute_force

PLUGIN = Path(_dp_kernel.__file__).resolve().parents[1]


@pytest.fixture
def kernel_calls(monkeypatch):
    """The ``lam`` argument of every ``_dp_kernel.solve_batch`` call."""
    calls, real = [], _dp_kernel.solve_batch

    def spy(cost, delta, lam, out):
        calls.append(None if lam is None else np.array(lam))
        real(cost, delta, lam, out)

    monkeypatch.setattr(_dp_kernel, "solve_batch", spy)
    return calls


@pytest.mark.parametrize("lam", [0.0, 0, -0.0, np.zeros(6), torch.zeros(6), torch.tensor(0.0),
                                 np.float64(0.0)], ids=repr)  # fmt: skip
def test_no_penalty_runs_the_lam_free_kernel(kernel_calls, monkeypatch, lam):
    cost = np.random.default_rng(0).normal(size=(6, 5, 7))
    want = dp_solve(cost, 1)
    np.testing.assert_array_equal(dp_solve(cost, 1, lam), want)
    monkeypatch.setattr(_config, "THREADS", 3)
    monkeypatch.setattr(_config, "MIN_CHUNK", 2)  # three chunks on the thread pool
    np.testing.assert_array_equal(dp_solve(cost, 1, lam), want)
    assert len(kernel_calls) == 1 + 1 + 3 and all(lam is None for lam in kernel_calls)


def test_a_penalised_contour_passes_every_weight(kernel_calls):
    cost = np.random.default_rng(1).normal(size=(3, 5, 7))
    dp_solve(cost, 1, np.array([0.0, 0.5, 0.0]))
    np.testing.assert_array_equal(kernel_calls[0], [0.0, 0.5, 0.0])


def test_the_plain_number_zero_is_not_validated_or_broadcast(monkeypatch):
    def fail(*args):
        raise AssertionError("check_lam called")

    monkeypatch.setattr(_checks, "check_lam", fail)
    assert _checks.lam_numpy(0.0, 4) is None and _checks.lam_numpy(0, 4) is None
    with pytest.raises(AssertionError, match="check_lam called"):  # anything else is checked
        _checks.lam_numpy(np.float64(0.0), 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("delta", [1, 2])
def test_specialisations_agree_bit_for_bit(dtype, delta):
    """``lam=None``, a zero weight and a mixed batch give the same contours where lam is 0, and
    the penalised contours are the brute-force optimum."""
    rng = np.random.default_rng(2)
    cost = rng.integers(-3, 4, size=(6, 4, 5)).astype(dtype)  # integer costs: many exact ties
    lam = np.array([0.0, 0.5, 0.0, 1.5, 0.0, 0.25])

    def solve(weights):
        out = np.empty((6, 4), dtype=np.int64)
        _dp_kernel.solve_batch(cost, delta, weights, out)
        return out

    plain = solve(None)
    np.testing.assert_array_equal(solve(np.zeros(6)), plain)
    mixed = solve(lam)
    np.testing.assert_array_equal(mixed[lam == 0], plain[lam == 0])
    for b in range(6):
        np.testing.assert_array_equal(mixed[b], brute_force(cost[b], delta, lam[b])[1])
        np.testing.assert_array_equal(plain[b], brute_force(cost[b], delta, 0.0)[1])


_CACHE_PROBE = """
import json, numpy as np
from diffbypass_stardp import _dp_kernel, dp_solve
dp_solve(np.zeros((2, 5, 7), dtype=np.float32), 1)
s = _dp_kernel.solve_batch.stats
print(json.dumps([sum(s.cache_hits.values()), sum(s.cache_misses.values())]))
"""


def test_the_lam_free_kernel_is_cached_across_processes(tmp_path):
    """``cache=True`` (``_config.JIT``): the first process compiles and writes the cache, the
    second loads it (no cache miss)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")])}

    def probe():
        run = subprocess.run([sys.executable, "-c", _CACHE_PROBE], env=env, check=True,
                             capture_output=True, text=True)
        return json.loads(run.stdout.strip().splitlines()[-1])

    assert probe() == [0, 1]
    assert probe() == [1, 0]
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
