"""Surrogate (the differentiable bypass): what it learns, what its backward is, and its options."""

from __future__ import annotations

import copy

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


# ---------------------------------------------------------------------------------- optimiser
def test_default_optimizer_is_adam_with_lr():
    est = Surrogate(small_model(), lr=0.02)
    assert isinstance(est.optimizer, torch.optim.Adam)
    assert est.optimizer.param_groups[0]["lr"] == 0.02


def test_optimizer_instance_is_used():
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    est = Surrogate(model, samples=4, fit_steps=1, optimizer=opt, generator=gen(0))
    assert est.optimizer is opt
    before = copy.deepcopy(model)
    Bypass(lambda t: t[:, :2], est)(torch.randn(3, 3, generator=gen(116), dtype=torch.float64))
    assert not torch.equal(before[0].weight, model[0].weight)


def test_optimizer_factory_gets_the_model_parameters():
    model = small_model()
    got = []

    def factory(params):
        got.append(list(params))
        return torch.optim.SGD(got[-1], lr=0.05)

    est = Surrogate(model, optimizer=factory)
    assert (
        isinstance(est.optimizer, torch.optim.SGD) and est.optimizer.param_groups[0]["lr"] == 0.05
    )
    assert [id(p) for p in got[0]] == [id(p) for p in model.parameters()]


def test_optimizer_over_other_parameters_is_rejected():
    other = nn.Linear(3, 2)
    with pytest.raises(
        ValueError, match=r"optimizer must only hold the surrogate model's parameters"
    ):
        Surrogate(small_model(), optimizer=torch.optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(ValueError, match=r"optimizer must only hold"):
        Surrogate(small_model(), optimizer=lambda ps: torch.optim.SGD(other.parameters(), lr=0.1))


@pytest.mark.parametrize(
    "spec,match",
    [
        (lambda ps: 3, r"optimizer factory must return a torch.optim.Optimizer; got int"),
        ("adam", r"optimizer must be None, a torch.optim.Optimizer or a factory.*got str"),
    ],
    ids=["factory-returns-int", "string"],
)
def test_optimizer_of_the_wrong_kind_is_a_type_error(spec, match):
    with pytest.raises(TypeError, match=match):
        Surrogate(small_model(), optimizer=spec)


def test_properties_and_repr():
    est = Surrogate(
        small_model(), sigma=0.3, samples=6, fit_steps=2, fit_loss=nn.functional.l1_loss
    )
    assert (est.sigma, est.samples, est.fit_steps) == (0.3, 6, 2)
    assert "sigma=0.3, samples=6, fit_steps=2, fit_loss='l1_loss'" in repr(est)
    with pytest.raises(TypeError, match=r"Surrogate is a gradient estimator, not a layer.*Bypass"):
        est(torch.zeros(1, 3))


def test_report_after_false_skips_only_the_post_fit_forward():
    """``report_after=False``: the same fit (weights, loss, agreement_before), one model forward
    fewer per fit, and ``agreement_after`` is ``None``; a non-bool is rejected."""
    counts = []
    layers = []
    for report in (True, False):
        est = Surrogate(small_model(), sigma=0.5, samples=8, fit_steps=3, lr=0.05,
                        generator=gen(0), report_after=report)
        calls = [0]
        est.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        layer = Bypass(lambda t: torch.round(t[:, :2] * 3), est)
        layer(torch.randn(5, 3, generator=gen(1), dtype=torch.float64))
        counts.append(calls[0])
        layers.append(layer)
    on, off = layers
    assert counts[0] == counts[1] + 1
    assert off.stats.agreement_after is None and on.stats.agreement_after is not None
    assert off.stats.agreement_before == on.stats.agreement_before
    assert off.stats.loss_last == on.stats.loss_last
    for p, q in zip(on.estimator.model.parameters(), off.estimator.model.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="report_after must be a bool; got int"):
        Surrogate(small_model(), report_after=1)


class ThreadProbe(nn.Module):
    """A small model that records torch's thread count in its forward and backward passes."""

    def __init__(self, seen):
        super().__init__()
        self.net, self.seen = small_model(), seen

    def forward(self, x):
        self.seen.append(("forward", torch.get_num_threads()))
        out = self.net(x)
        if out.requires_grad:
            out.register_hook(lambda g: self.seen.append(("backward", torch.get_num_threads())))
        return out


@pytest.mark.parametrize("path", ["predict", "vjp"])
def test_threads_apply_to_fit_predict_and_backward_and_are_restored(path):
    """``threads=1``: the fit, the prediction and its backward run on one thread, the caller's
    setting is back afterwards, and every number equals the run without ``threads``."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads, weights = [], []
        for threads in (None, 1):
            seen = []
            est = Surrogate(ThreadProbe(seen).double(), sigma=0.5, samples=4, fit_steps=2,
                            lr=0.05, generator=gen(0), threads=threads)
            layer = Bypass(lambda t: torch.round(t[:, :2] * 3), est)
            x = torch.randn(5, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
            y = layer(x)  # fits
            out = layer.predict(x) if path == "predict" else y
            out.backward(torch.ones_like(out))
            assert torch.get_num_threads() == 2
            expected = 2 if threads is None else 1
            assert {n for _, n in seen} == {expected}, seen
            assert {kind for kind, _ in seen} == {"forward", "backward"}
            grads.append(x.grad)
            weights.append([p.detach().clone() for p in est.model.parameters()])
        assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
        for p, q in zip(*weights):
            assert torch.allclose(p, q, rtol=1e-12, atol=1e-12)
    finally:
        torch.set_num_threads(before)


def test_threads_is_checked():
    with pytest.raises(ValueError, match="threads must be an integer >= 1; got 0"):
        Surrogate(small_model(), threads=0)


def test_auto_threads_runs_a_small_surrogate_on_one_thread_and_a_large_on_the_callers(
    monkeypatch,
):
    """Issue #22: on a busy machine a small surrogate on the default threads was ~30x slower."""
    from diffbypass.estimators import _threads

    SMALL_WORK = 20 * 2000  # the fit's 20 rows of a model of at most 2000 parameters
    monkeypatch.setattr(_threads, "SMALL_WORK", SMALL_WORK)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for width, expected in ((8, 1), (4096, 2)):
            seen = []
            model = nn.Sequential(ThreadProbe(seen), nn.Linear(2, width), nn.Linear(width, 2))
            model = model.double()
            est = Surrogate(model, sigma=0.5, samples=4, fit_steps=1, generator=gen(0))
            assert est.threads == "auto"
            work = 5 * sum(p.numel() for p in model.parameters())  # the backward's 5 rows
            assert (work <= SMALL_WORK) == (expected == 1)
            x = torch.randn(5, 3, generator=gen(1), dtype=torch.float64, requires_grad=True)
            Bypass(lambda t: torch.round(t[:, :2]), est)(x).sum().backward()
            # after the 1-row probe of the output shape: the fit and the backward
            assert {n for _, n in seen[1:]} == {expected}, (width, seen)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match=r"threads must be 'auto', None or an integer >= 1; got 'on"):
        Surrogate(small_model(), threads="one")
