"""StarSurrogate: shapes for any N, M, circular padding along the lines."""

from __future__ import annotations

import pytest
import torch

from diffbypass_stardp import StarSurrogate


@pytest.mark.parametrize(("n_lines", "m"), [(25, 65), (24, 64), (7, 13), (3, 2), (12, 129)])
def test_output_shape_for_any_size(n_lines, m):
    torch.manual_seed(0)
    net = StarSurrogate()
    out = net(torch.rand(2, n_lines, m))
    assert out.shape == (2, n_lines, m)
    assert net(torch.rand(2, 1, n_lines, m)).shape == (2, n_lines, m)


def test_in_channels_and_capacity():
    net = StarSurrogate(base_channels=4, depth=2, in_channels=3)
    assert net(torch.rand(2, 3, 25, 65)).shape == (2, 25, 65)
    small = sum(p.numel() for p in StarSurrogate(base_channels=4).parameters())
    default = sum(p.numel() for p in StarSurrogate().parameters())
    assert small < default
    assert "base_channels=8, depth=3, in_channels=1" in repr(StarSurrogate())


def test_rolling_the_lines_rolls_the_output():
    torch.manual_seed(1)
    net = StarSurrogate().double()
    x = torch.rand(2, 24, 33, dtype=torch.float64)  # N a multiple of 2**depth = 8
    for shift in (8, 16, -8):
        torch.testing.assert_close(net(torch.roll(x, shift, dims=1)),
                                   torch.roll(net(x), shift, dims=1))


def test_line_zero_sees_line_n_minus_one():
    # circular padding: the first line's output depends on the last line's input (and not only
    # through the deep layers: a single-level network shows it too)
    torch.manual_seed(2)
    for depth in (1, 3):
        net = StarSurrogate(depth=depth).double()
        x = torch.rand(1, 25, 65, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(net(x)[0, 0].sum(), x)
        assert g[0, -1].abs().sum() > 0  # line N-1 wraps around to line 0
        if depth == 1:  # ... directly, not around the long way: line 12 is out of reach
            assert g[0, 12].abs().sum() == 0


def test_validation():
    with pytest.raises(ValueError, match=r"base_channels must be an integer >= 1; got 0"):
        StarSurrogate(base_channels=0)
    with pytest.raises(ValueError, match=r"depth must be an integer >= 1; got 0"):
        StarSurrogate(depth=0)
    with pytest.raises(
        ValueError,
        match=r"x must have shape \(B, N, M\) or \(B, 1, N, M\); got \(25, "
        r"65\)",
    ):
        StarSurrogate()(torch.rand(25, 65))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2, N, M\); got \(1, 25, 65\)"):
        StarSurrogate(in_channels=2)(torch.rand(1, 25, 65))
