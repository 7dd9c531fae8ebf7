"""Surrogate (the differentiable bypass): what it learns, what its backward is, and its options."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from torch import nn

from diffbypass import Bypass, FitStats, StraightThrough, Surrogate, check_gradient
from diffbypass.bypass import _BypassFunction

from .registry import gen


def seeded(seed, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def frozen(module):
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# ---------------------------------------------------------------------------------- learning
TRUE_NET = frozen(
    seeded(0, lambda: nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)).double())
)


def smooth_fn(x):
    return TRUE_NET(x)


def true_vjp(x, v):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(TRUE_NET(x), x, v)
    return g


def test_fitted_along_a_moving_input_the_gradient_matches_autograd():
    """As in training: the input drifts slowly, one fit per forward. Afterwards the surrogate's
    VJP points the same way as the true fn's (cosine >= 0.9; ~0.99 in practice), and the R^2 on
    fresh samples (held out at fit time) is high."""
    model = seeded(1, lambda: nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2)).double())
    layer = Bypass(
        smooth_fn, Surrogate(model, sigma=0.2, samples=16, fit_steps=10, lr=2e-2, generator=gen(2))
    )
    x0 = torch.randn(8, 4, generator=gen(3), dtype=torch.float64)
    drift = torch.randn(8, 4, generator=gen(4), dtype=torch.float64)
    for t in range(15):
        layer(x0 + 0.01 * t * drift)
    assert layer.stats.metric == "r2" and layer.stats.agreement_before > 0.95
    result = check_gradient(layer.eval(), None, x0 + 0.15 * drift, reference=true_vjp)
    assert result.cosine >= 0.9, str(result)


G, K = 2, 4  # groups, classes per group


def argmax_groups(x):
    return x.reshape(x.shape[0], G, K).argmax(-1)


def test_argmax_black_box_with_cross_entropy_reaches_high_agreement():
    """Accuracy (``agreement``) starts near chance (1/K) and rises above 90%, both after the fit
    and (the honest held-out figure) on the fresh samples before each fit; means of the last 5."""
    model = seeded(
        0,
        lambda: nn.Sequential(
            nn.Linear(G * K, 64), nn.ReLU(), nn.Linear(64, G * K), nn.Unflatten(1, (G, K))
        ),
    )
    layer = Bypass(
        argmax_groups,
        Surrogate(
            model, sigma=1.0, samples=16, fit_steps=5, fit_loss="ce", lr=1e-2, generator=gen(1)
        ),
    )
    data = gen(2)
    history = []
    for _ in range(50):
        y = layer(torch.randn(16, G * K, generator=data))
        assert y.dtype == torch.int64 and not y.requires_grad
        history.append(layer.stats)
    assert history[0].metric == "accuracy"
    assert history[0].agreement_before < 0.5
    late = history[-5:]
    assert sum(s.agreement_before for s in late) / 5 > 0.9
    assert sum(s.agreement_after for s in late) / 5 > 0.9
    assert all(s.samples == 16 * 16 and s.dropped == 0 and s.steps == 5 for s in history)


# ---------------------------------------------------------------------------------- backward
def small_model(seed=0, dtype=torch.float64):
    return seeded(seed, lambda: nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))).to(
        dtype
    )


def test_vjp_is_exactly_autograd_of_the_fitted_model():
    """Bypass(fn, Surrogate(model)) backward == autograd of ``model`` (as fitted by the forward)."""
    est = Surrogate(small_model(), sigma=0.5, samples=8, fit_steps=3, lr=0.05, generator=gen(0))
    layer = Bypass(lambda t: torch.round(t[:, :2] * 3), est)
    x = torch.randn(5, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
    v = torch.randn(5, 2, generator=gen(2), dtype=torch.float64)
    before = copy.deepcopy(est.model)
    layer(x).backward(v)
    assert not all(
        torch.equal(p, q) for p, q in zip(before.parameters(), est.model.parameters(), strict=True)
    )
    xx = x.detach().clone().requires_grad_(True)
    (want,) = torch.autograd.grad(est.model(xx), xx, v)
    torch.testing.assert_close(x.grad, want, rtol=1e-12, atol=1e-14)


def test_gradcheck_when_fn_equals_the_model():
    """With fn a frozen copy of the model, Bypass is the model's own function: its backward must
    pass ``gradcheck`` in float64 (eval mode, so no fit changes the model between calls)."""
    model = small_model(3)
    fn = frozen(copy.deepcopy(model))
    layer = Bypass(fn, Surrogate(model, generator=gen(0))).eval()
    x = torch.randn(4, 3, generator=gen(4), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-8)


def test_predict_gives_gradients_to_x_only():
    est = Surrogate(small_model(), generator=gen(0))
    layer = Bypass(lambda t: t[:, :2].round(), est)
    x = torch.randn(4, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
    out = layer.predict(x)
    torch.testing.assert_close(out, est.model(x), rtol=0, atol=0)
    out.sum().backward()
    assert x.grad is not None and bool((x.grad != 0).any())
    assert all(p.grad is None for p in est.model.parameters())


class Raising(nn.Module):
    """A model that raises when its input holds a NaN."""

    def __init__(self):
        super().__init__()
        self.net = small_model()

    def forward(self, x):
        if bool(x.isnan().any()):
            raise ValueError("NaN input")
        return self.net(x)


@pytest.mark.parametrize("threads", ["auto", None], ids=["threaded", "caller-threads"])
def test_predict_and_vjp_leave_the_parameters_as_they_were(threads):
    # predict runs the model with its parameters' requires_grad switched off; the flags (a
    # frozen layer stays frozen) come back after every path, an exception included
    model = Raising()
    model.net[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    layer = Bypass(lambda t: t[:, :2].round(), Surrogate(model, generator=gen(0), threads=threads))
    x = torch.randn(4, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
    layer(x).sum().backward()  # fit, then the VJP
    layer.predict(x).sum().backward()
    with torch.no_grad():
        layer.predict(x)
    with pytest.raises(ValueError, match="NaN input"):
        layer.predict(torch.full((1, 3), float("nan"), dtype=torch.float64))
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


class Paused(nn.Module):
    """A model whose forward, in the threads named in ``pauses``, waits for an event first."""

    def __init__(self):
        super().__init__()
        self.net = small_model()
        self.pauses: dict[str, tuple[threading.Event, threading.Event]] = {}

    def forward(self, x):
        if threading.current_thread().name in self.pauses:
            inside, go = self.pauses[threading.current_thread().name]
            inside.set()
            assert go.wait(10), "the test did not release this thread"
        return self.net(x)


def test_concurrent_predictions_all_run_on_detached_parameters():
    """Thread A enters predict first, B second; A leaves while B is inside. B must still run
    on detached parameters (before the fix A restored ``requires_grad`` under B, whose output
    then reached the parameters), and the flags come back once both have left."""
    model = Paused()
    est = Surrogate(model, generator=gen(0), threads=None)
    x = torch.randn(4, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
    events = {name: (threading.Event(), threading.Event()) for name in "AB"}
    model.pauses = events
    outs: dict[str, torch.Tensor] = {}
    threads = {n: threading.Thread(target=lambda n=n: outs.update({n: est.predict(x)}), name=n)
               for n in "AB"}  # fmt: skip
    threads["A"].start()
    assert events["A"][0].wait(10)
    threads["B"].start()
    assert events["B"][0].wait(10)
    events["A"][1].set()  # A finishes and leaves while B is inside the model
    threads["A"].join(10)
    assert all(not p.requires_grad for p in model.parameters())  # B is still inside
    events["B"][1].set()
    threads["B"].join(10)
    assert not threads["A"].is_alive() and not threads["B"].is_alive() and set(outs) == {"A", "B"}
    (outs["A"] + outs["B"]).sum().backward()
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is not None and bool((x.grad != 0).any())
    assert all(p.requires_grad for p in model.parameters())


def test_predict_needs_a_surrogate():
    layer = Bypass(torch.round, StraightThrough())
    with pytest.raises(TypeError, match=r"StraightThrough has no differentiable prediction"):
        layer.predict(torch.zeros(1, 2))


def test_module_and_autograd_function_agree():
    """Bypass (the thin module) == its private autograd Function, forward and backward."""
    x = torch.randn(4, 3, generator=gen(5), dtype=torch.float64)
    v = torch.randn(4, 2, generator=gen(6), dtype=torch.float64)

    def run(via_module):
        est = Surrogate(small_model(), sigma=0.5, samples=4, fit_steps=2, generator=gen(7))
        layer = Bypass(lambda t: t[:, :2] ** 2, est)
        xx = x.clone().requires_grad_(True)
        y = layer(xx) if via_module else _BypassFunction.apply(xx, layer.blackbox, est)
        y.backward(v)
        return y.detach(), xx.grad, est.stats

    assert all(
        a == b if isinstance(a, FitStats) else torch.equal(a, b)
        for a, b in zip(run(True), run(False), strict=True)
    )


# ---------------------------------------------------------------------------------- modes
def test_training_mode_fits_once_per_forward_and_backward_calls_no_fn():
    est = Surrogate(small_model(), sigma=0.5, samples=4, fit_steps=2, generator=gen(0))
    layer = Bypass(lambda t: t[:, :2].sign(), est)
    x = torch.randn(4, 3, generator=gen(110), dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert layer.blackbox.calls == 2  # fn(x) + one vectorised call on the S*B samples
    assert layer.stats.samples == 4 * 4 and layer.stats.steps == 2
    y.sum().backward()
    assert layer.blackbox.calls == 2


def test_eval_mode_no_fitting_and_one_call_per_forward():
    est = Surrogate(small_model(), sigma=0.5, samples=4, fit_steps=2, generator=gen(0))
    layer = Bypass(lambda t: t[:, :2].sign(), est)
    layer(torch.randn(4, 3, generator=gen(111), dtype=torch.float64))
    stats, weights = layer.stats, copy.deepcopy(est.model.state_dict())
    rng = est.sampler.generator.get_state()
    layer.eval()
    for n in range(1, 4):
        x = torch.randn(4, 3, generator=gen(112), dtype=torch.float64, requires_grad=True)
        layer(x).sum().backward()
        assert layer.blackbox.calls == 2 + n
    assert layer.stats is stats
    assert all(torch.equal(v, est.model.state_dict()[k]) for k, v in weights.items())
    assert torch.equal(rng, est.sampler.generator.get_state())  # no noise drawn either


def test_fit_steps_zero_never_fits():
    est = Surrogate(small_model(), fit_steps=0, generator=gen(0))
    layer = Bypass(lambda t: t[:, :2], est)
    layer(torch.randn(3, 3, generator=gen(113), dtype=torch.float64))
    assert layer.stats is None and layer.blackbox.calls == 1


def test_fit_hooks_receive_stats_and_can_be_removed():
    est = Surrogate(small_model(), sigma=0.5, samples=4, fit_steps=1, generator=gen(0))
    layer = Bypass(lambda t: t[:, :2].sign(), est)
    seen_a, seen_b = [], []
    handle_a = est.register_fit_hook(lambda s, stats: seen_a.append((s, stats)))
    est.register_fit_hook(lambda s, stats: seen_b.append(stats))
    layer(torch.randn(2, 3, generator=gen(114), dtype=torch.float64))
    assert len(seen_a) == 1 and seen_a[0][0] is est and seen_a[0][1] is est.stats
    assert isinstance(seen_b[0], FitStats) and seen_b[0].as_dict()["samples"] == 8
    handle_a.remove()
    layer(torch.randn(2, 3, generator=gen(115), dtype=torch.float64))
    assert len(seen_a) == 1 and len(seen_b) == 2


def test_nonfinite_drop_in_fit_samples():
    def fn(x):  # NaN for about half of the perturbed samples, never at x itself (x_0 = 0 there)
        return torch.where(x[:, :1] > 0.3, float("nan"), x[:, :2] ** 2)

    x = torch.zeros(4, 3, dtype=torch.float64)
    est = Surrogate(small_model(), sigma=1.0, samples=16, fit_steps=2, generator=gen(0))
    Bypass(fn, est, nonfinite="drop")(x)
    xs, _ = type(est.sampler)(1.0, 16, generator=gen(0)).perturb(x)
    expect_dropped = int((xs[..., 0] > 0.3).sum())
    assert 0 < expect_dropped < 64
    assert (est.stats.dropped, est.stats.samples) == (expect_dropped, 64 - expect_dropped)
    assert all(v == v for v in est.stats.as_dict().values() if isinstance(v, float))  # no NaN
