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


def test_shape_changes_are_named_not_raw_torch_errors():
    """Issue #22: a changed output shape, or near of another shape, gave torch's own errors."""
    buf = ReplayBuffer(5, radius=1.0)
    buf.extend(torch.zeros(3, 2), torch.zeros(3, 1), near=torch.zeros(1, 2))
    with pytest.raises(
        ValueError,
        match=r"ReplayBuffer: fn's per-item output shape changed from \(1,\) \(stored pairs\) to "
        r"\(4,\) for the same input shape \(2,\); call clear\(\) if fn was replaced",
    ):
        buf.extend(torch.zeros(3, 2), torch.zeros(3, 4), near=torch.zeros(1, 2))
    with pytest.raises(
        ValueError, match=r"near must have the inputs' per-item shape \(2,\); got \(3,\)"
    ):
        buf.extend(torch.zeros(3, 2), torch.zeros(3, 1), near=torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"got 3 inputs and 2 targets"):
        buf.extend(torch.zeros(3, 2), torch.zeros(2, 1), near=torch.zeros(1, 2))
    x, _ = buf.extend(torch.zeros(2, 4), torch.zeros(2, 1), near=torch.zeros(1, 4))
    assert x.shape == (2, 4) and len(buf) == 2  # another input shape: a new problem


def test_loading_more_pairs_than_the_capacity_keeps_the_newest():
    big = ReplayBuffer(5)
    pairs = torch.arange(10.0).reshape(5, 2), torch.arange(5.0).reshape(5, 1)
    big.extend(*pairs, near=torch.zeros(1, 2))
    small = ReplayBuffer(2)
    small.load_state_dict(big.state_dict())
    x, y = small.extend(torch.zeros(0, 2), torch.zeros(0, 1), near=torch.zeros(1, 2))
    assert len(small) == 2 and torch.equal(y, torch.tensor([[3.0], [4.0]]))
    with pytest.raises(ValueError, match=r"got shape \(5, 2\) and NoneType"):
        small.load_state_dict({"_extra_state": {"inputs": torch.zeros(5, 2), "targets": None}})
