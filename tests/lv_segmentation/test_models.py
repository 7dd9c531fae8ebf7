"""The CPU U-Net: shapes, parameter count, validation."""

from __future__ import annotations

import pytest
import torch

from lvseg.models import UNet

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("base", "depth", "size"), [(4, 2, 32), (8, 4, 128), (2, 0, 8)])
def test_forward_keeps_the_spatial_size(base: int, depth: int, size: int) -> None:
    net = UNet(base_channels=base, depth=depth)
    out = net(torch.randn(3, 1, size, size))
    assert out.shape == (3, 1, size, size)


def test_out_channels_and_gradients_reach_the_first_layer() -> None:
    net = UNet(out_channels=2, base_channels=4, depth=2)
    out = net(torch.randn(2, 1, 16, 16))
    assert out.shape == (2, 2, 16, 16)
    out.sum().backward()
    assert net.down[0][0].weight.grad is not None
    assert net.down[0][0].weight.grad.abs().sum() > 0


def test_default_size_is_cpu_sized() -> None:
    params = sum(p.numel() for p in UNet().parameters())
    assert 100_000 < params < 1_000_000  # documented: about 0.45 M


def test_size_not_divisible_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 4; got \(30, 32\)"):
        UNet(base_channels=2, depth=2)(torch.zeros(1, 1, 30, 32))


def test_bad_input_rank_and_arguments() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\); got \(1, 32, 32\)"):
        UNet(base_channels=2, depth=1)(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="base_channels must be an integer >= 1; got 0"):
        UNet(base_channels=0)
