"""NoiseSampler (shared by ES and Surrogate) and the fit telemetry helpers."""

from __future__ import annotations

import pytest
import torch

from diffbypass import NoiseSampler
from diffbypass.stats import FitStats, agreement

from .registry import gen


def test_antithetic_pairs_and_shapes():
    s = NoiseSampler(0.5, 6, antithetic=True, generator=gen(0))
    x = torch.zeros(2, 3, dtype=torch.float64)
    xs, eps = s.perturb(x)
    assert eps.shape == xs.shape == (6, 2, 3) and eps.dtype == torch.float64
    assert torch.equal(eps[3:], -eps[:3])
    assert torch.equal(xs, 0.5 * eps)


def test_same_seed_same_noise_and_state_round_trip():
    a, b = NoiseSampler(1.0, 4, generator=gen(5)), NoiseSampler(1.0, 4, generator=gen(5))
    x = torch.zeros(3, 2)
    assert torch.equal(a.noise(x), b.noise(x))
    state = a.state_dict()
    first = a.noise(x)
    c = NoiseSampler(1.0, 4, generator=gen(99))
    c.load_state_dict(state)
    assert torch.equal(c.noise(x), first)


def test_default_generator_follows_the_global_seed():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        a = NoiseSampler(1.0, 2).noise(torch.zeros(1, 3))
        torch.manual_seed(11)
        b = NoiseSampler(1.0, 2).noise(torch.zeros(1, 3))
    assert torch.equal(a, b)


def test_integer_input_gets_float_noise():
    eps = NoiseSampler(1.0, 2, generator=gen(0)).noise(torch.zeros(2, 2, dtype=torch.int64))
    assert eps.dtype == torch.float32


def test_repr():
    assert (
        repr(NoiseSampler(0.5, 4, antithetic=True))
        == "NoiseSampler(sigma=0.5, samples=4, antithetic=True)"
    )


def test_agreement_accuracy_and_r2():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 5.0]])
    assert agreement(logits, torch.tensor([0, 1, 1, 1]), "accuracy") == 0.75
    target = torch.tensor([1.0, 2.0, 3.0])
    assert agreement(target, target, "r2") == 1.0
    assert agreement(torch.full((3,), 2.0), target, "r2") == pytest.approx(0.0)
    const = torch.ones(3)  # zero variance: 1 if exact, else 0
    assert agreement(const, const, "r2") == 1.0 and agreement(const * 2, const, "r2") == 0.0


def test_fit_stats_as_dict():
    s = FitStats(1.0, 0.5, 0.1, 0.9, "r2", 8, 0, 2)
    assert s.as_dict() == {
        "loss_first": 1.0,
        "loss_last": 0.5,
        "agreement_before": 0.1,
        "agreement_after": 0.9,
        "metric": "r2",
        "samples": 8,
        "dropped": 0,
        "steps": 2,
        "skipped": 0,
    }
