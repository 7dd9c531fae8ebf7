"""StarSurrogate and LineSurrogate: shapes for any N, M, circular padding along the lines."""

from __future__ import annotations

import pytest
import torch

from diffbypass import Bypass, Surrogate
from diffbypass_stardp import FIT_LOSS, LineSurrogate, StarDP, StarSurrogate


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


@pytest.mark.parametrize(("n", "m"), [(25, 65), (2, 3), (1, 1), (2, 1), (1, 2), (4, 2), (3, 5)])
def test_star_padding_and_pooling_equal_the_f_pad_reference(n, m):
    # values and gradients bit for bit: the concatenations and ceil_mode replace F.pad's
    # circular/replicate modes and an explicit edge copy before pooling
    import torch.nn.functional as F

    from diffbypass_stardp.surrogate import _pad_star, _pool

    def reference_pad(x):
        return F.pad(F.pad(x, (0, 0, 1, 1), mode="circular"), (1, 1, 0, 0), mode="replicate")

    def reference_pool(x):
        if x.shape[-2] % 2:
            x = torch.cat([x, x[..., :1, :]], dim=-2)
        if x.shape[-1] % 2:
            x = torch.cat([x, x[..., -1:]], dim=-1)
        return F.max_pool2d(x, 2)

    torch.manual_seed(n * 100 + m)
    x = torch.randn(2, 3, n, m, dtype=torch.float64)
    for mine, reference in ((lambda t: _pad_star(t, 1, 1), reference_pad), (_pool, reference_pool)):
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = mine(a), reference(b)
        assert torch.equal(ya, yb)
        g = torch.randn(ya.shape, dtype=torch.float64)
        ya.backward(g)
        yb.backward(g)
        assert torch.equal(a.grad, b.grad)


def _reference_pad(x):
    import torch.nn.functional as F

    return F.pad(F.pad(x, (0, 0, 1, 1), mode="circular"), (1, 1, 0, 0), mode="replicate")


@pytest.mark.parametrize(("n", "m"), [(2, 2), (3, 5), (4, 3)])
def test_star_padding_has_second_order_gradients(n, m):
    from diffbypass_stardp.surrogate import _pad_star

    torch.manual_seed(n + m)
    x = torch.randn(2, 2, n, m, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: _pad_star(t, 1, 1) ** 2, (x,))


def test_star_padding_backward_folds_without_full_size_zero_tensors():
    # the cost the custom backward removes: autograd's backward of a slice copy is a
    # slice_backward (a zero tensor of the full size, then an add) per copied edge
    from torch.utils._python_dispatch import TorchDispatchMode

    from diffbypass_stardp.surrogate import _pad_star

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    x = torch.randn(2, 3, 25, 65, requires_grad=True)
    y = _pad_star(x, 1, 1)
    with Ops() as ops:
        y.backward(torch.ones_like(y))
    assert "slice_backward" not in ops.names and "zeros" not in ops.names, ops.names


def test_star_surrogate_equals_the_f_pad_network_bit_for_bit(monkeypatch):
    # the whole network, channels-last as lvseg uses it: outputs, the input's gradient (the VJP)
    # and every parameter's gradient (the fit) equal those of the same network padded by F.pad
    import diffbypass_stardp.surrogate as module

    torch.manual_seed(5)
    net = StarSurrogate().to(memory_format=torch.channels_last)
    x = torch.randn(4, 25, 65)
    target = torch.randint(0, 65, (4, 25))
    grad_out = torch.randn(4, 25, 65)

    def run():
        net.zero_grad(set_to_none=True)
        xx = x.clone().requires_grad_(True)
        out = net(xx)
        loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), target.flatten())
        (gx,) = torch.autograd.grad(out, xx, grad_out, retain_graph=True)
        loss.backward()
        return [out.detach(), gx] + [p.grad for p in net.parameters()]

    mine = run()
    monkeypatch.setattr(module, "_pad_star", lambda t, lines, points: _reference_pad(t))
    reference = run()
    assert all(torch.equal(a, b) for a, b in zip(mine, reference))


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


# ---------------------------------------------------------------- LineSurrogate (issue #9)
@pytest.mark.parametrize(("n_lines", "m"), [(25, 65), (7, 13), (3, 2)])
@pytest.mark.parametrize("dilation", [1, 4])
def test_line_surrogate_shape_and_any_roll(n_lines, m, dilation):
    torch.manual_seed(3)
    net = LineSurrogate(max_dilation=dilation).double()
    x = torch.rand(2, n_lines, m, dtype=torch.float64)
    assert net(x).shape == (2, n_lines, m) and net(x[:, None]).shape == (2, n_lines, m)
    for shift in (1, -2, n_lines + 1):  # no pooling: equivariant to every roll of the lines
        torch.testing.assert_close(net(torch.roll(x, shift, dims=1)),
                                   torch.roll(net(x), shift, dims=1))


def test_line_surrogate_context_along_the_lines():
    # without dilation, 4 convolutions with 3 lines each: lines 0 +- 4 reach line 0, wrapping
    # round; with dilations 1, 2, 4, 4 (default) lines 0 +- 11
    torch.manual_seed(4)
    x = torch.rand(1, 25, 65, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(LineSurrogate(max_dilation=1).double()(x)[0, 0].sum(), x)
    reach = g[0].abs().sum(dim=1) > 0
    assert reach[[0, 1, 4, 21, 24]].all() and not reach[5:21].any()
    (g,) = torch.autograd.grad(LineSurrogate().double()(x)[0, 0].sum(), x)
    reach = g[0].abs().sum(dim=1) > 0
    assert reach[[0, 11, 14]].all() and not reach[12:14].any()


def test_line_surrogate_is_lighter_and_fits_as_a_surrogate():
    light = sum(p.numel() for p in LineSurrogate().parameters())
    assert light < sum(p.numel() for p in StarSurrogate().parameters()) / 30
    torch.manual_seed(5)
    layer = Bypass(StarDP(), Surrogate(LineSurrogate(), samples=2, fit_steps=1,
                                       fit_loss=FIT_LOSS))
    x = torch.rand(3, 25, 65, requires_grad=True)
    layer(x)
    logits = layer.predict(x)
    assert logits.shape == (3, 25, 65)
    logits.sum().backward()
    assert x.grad is not None and layer.stats.steps == 1


def test_line_surrogate_validation():
    assert "channels=8, layers=4, kernel=(3, 5), max_dilation=4, in_channels=1" in repr(
        LineSurrogate())
    with pytest.raises(ValueError, match=r"channels must be an integer >= 1; got 0"):
        LineSurrogate(channels=0)
    with pytest.raises(ValueError, match=r"layers must be an integer >= 1; got 0"):
        LineSurrogate(layers=0)
    with pytest.raises(
        ValueError, match=r"kernel must be \(k_N, k_M\) with odd positive integers; got \(2, 3\)"
    ):
        LineSurrogate(kernel=(2, 3))
    with pytest.raises(ValueError, match=r"max_dilation must be an integer >= 1; got 0"):
        LineSurrogate(max_dilation=0)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2, N, M\); got \(1, 25, 65\)"):
        LineSurrogate(in_channels=2)(torch.rand(1, 25, 65))


@pytest.mark.parametrize("build", [StarSurrogate, LineSurrogate], ids=["star", "line"])
def test_lam_input_is_one_more_channel_with_gradients(build):
    torch.manual_seed(3)
    net = build(lam_input=True).double()
    x = torch.rand(3, 8, 12, dtype=torch.float64)
    shared = net(x, 0.5)
    torch.testing.assert_close(net(x, torch.tensor(0.5)), shared, rtol=0, atol=0)
    torch.testing.assert_close(net(x, torch.full((3,), 0.5)), shared, rtol=0, atol=0)
    per_item = net(x, torch.tensor([0.0, 0.5, 2.0]))
    torch.testing.assert_close(per_item[1], shared[1], rtol=0, atol=0)  # items are independent
    assert not torch.equal(per_item[0], shared[0]), "the weight must change the logits"
    lam = torch.tensor([0.2, 0.7, 1.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: net(x[:, :4, :6], w), (lam,))  # d logits / d lam
    first = net.encoders[0].conv1 if build is StarSurrogate else net.convs[0]
    plain = build()
    assert first.in_channels == (plain.encoders[0].conv1 if build is StarSurrogate
                                 else plain.convs[0]).in_channels + 1
    assert "lam_input=True" in repr(net) and "lam_input" not in repr(plain)


@pytest.mark.parametrize("build", [StarSurrogate, LineSurrogate], ids=["star", "line"])
def test_lam_input_validation(build):
    x = torch.rand(2, 8, 12)
    with pytest.raises(ValueError, match=r"lam is required: this surrogate was built with "
                                         r"lam_input=True"):
        build(lam_input=True)(x)
    with pytest.raises(ValueError, match=r"lam was given but this surrogate does not take it; "
                                         r"build it with lam_input=True"):
        build()(x, 0.5)
    with pytest.raises(ValueError, match=r"lam must be finite and >= 0; got -1.0 at index 1"):
        build(lam_input=True)(x, torch.tensor([0.0, -1.0]))
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        build(lam_input=True)(x, torch.zeros(3))
    with pytest.raises(TypeError, match=r"lam_input must be True or False; got 1"):
        build(lam_input=1)
