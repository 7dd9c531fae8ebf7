"""The replay buffer: bounded, local, and more surrogate fit data at no extra fn calls."""

from __future__ import annotations

import pytest
import torch

from diffbypass import Bypass, ReplayBuffer, Surrogate


def test_capacity_keeps_the_newest_and_radius_keeps_the_local():
    buf = ReplayBuffer(4, radius=1.0)
    buf.extend(torch.zeros(3, 2), torch.zeros(3, 1), near=torch.zeros(1, 2))
    far = torch.full((2, 2), 10.0)
    x, _ = buf.extend(far, torch.ones(2, 1), near=torch.zeros(1, 2))
    assert x.shape == (5, 2)  # 2 fresh + the 3 stored within radius 1 of the origin
    x, y = buf.extend(torch.zeros(1, 2), torch.zeros(1, 1), near=torch.full((1, 2), 10.0))
    # stored: the newest 4 = one zero + the two far ones + ... ; only the far ones are near
    assert x.shape == (3, 2) and torch.equal(x[1:], far)
    assert len(buf) == 4
    buf.clear()
    assert len(buf) == 0


def test_surrogate_fits_on_more_data_at_no_extra_calls():
    def make(replay):
        net = torch.nn.Linear(3, 3)
        torch.nn.init.zeros_(net.weight)
        return Bypass(torch.sign, Surrogate(net, sigma=0.5, samples=4, fit_steps=1,
                      generator=torch.Generator().manual_seed(0), replay=replay))  # fmt: skip

    plain, replayed = make(None), make(ReplayBuffer(64))
    seen = []
    replayed.estimator.register_fit_hook(lambda s, st: seen.append(st))
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(2, 3, generator=g)
        plain(x)
        replayed(x)
    assert plain.blackbox.calls == replayed.blackbox.calls
    assert plain.blackbox.instances == replayed.blackbox.instances
    assert [s.samples for s in seen] == [8, 8, 8]  # fresh samples; agreement measured on them
    assert len(replayed.estimator.replay) == 24


def test_errors():
    with pytest.raises(ValueError, match="capacity must be"):
        ReplayBuffer(0)
    with pytest.raises(ValueError, match="radius must be"):
        ReplayBuffer(4, radius=-1.0)
