"""Surrogate's options: the optimiser, properties and repr, ``report_after`` and threads."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from diffbypass import Bypass, Surrogate

from .registry import gen
from .test_surrogate import small_model


# ---------------------------------------------------------------------------------- optimiser
def test_default_optimizer_is_adam_with_lr():
    est = Surrogate(small_model(), lr=0.02)
    assert isinstance(est.optimizer, torch.optim.Adam)
    assert est.optimizer.param_groups[0]["lr"] == 0.02


def test_default_adam_is_built_only_when_needed(tmp_path):
    """Loading a trained state and predicting never build the default Adam, whose construction
    imports torch._dynamo: checked in a fresh interpreter. (Failed when it was built eagerly.)"""
    trained = Surrogate(small_model(), samples=4, fit_steps=1, generator=gen(0))
    Bypass(lambda t: t[:, :2].round(), trained)(torch.randn(3, 3, dtype=torch.float64))
    torch.save(trained.state_dict(), tmp_path / "state.pt")
    code = (
        "import sys, torch\n"
        "from diffbypass import Bypass, Surrogate\n"
        "net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))\n"
        "est = Surrogate(net.double()).eval()\n"
        f"est.load_state_dict(torch.load({str(tmp_path / 'state.pt')!r}, weights_only=True))\n"
        "x = torch.randn(4, 3, dtype=torch.float64)\n"
        "est.predict(x); Bypass(lambda t: t[:, :2].round(), est)(x)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_state_loaded_before_the_adam_is_built_is_restored_exactly():
    """A state loaded into a fresh Surrogate (its Adam not built yet) fits on exactly as the
    Surrogate it came from: the same Adam state, the same next fit."""
    x = torch.randn(5, 3, generator=gen(7), dtype=torch.float64)

    def fitted(est):
        Bypass(lambda t: t[:, :2].round(), est)(x)
        return est

    a = fitted(Surrogate(small_model(), samples=4, fit_steps=3, lr=0.05, generator=gen(1)))
    b = Surrogate(small_model(seed=5), samples=4, fit_steps=3, lr=0.05, generator=gen(2))
    b.load_state_dict(a.state_dict())
    assert str(b.optimizer.state_dict()) == str(a.optimizer.state_dict())
    fitted(a), fitted(b)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


def test_optimizer_state_of_another_layout_is_refused_at_loading():
    est = Surrogate(small_model())
    state = Surrogate(small_model()).get_extra_state()
    groups = state["optimizer"]["param_groups"]
    with pytest.raises(ValueError, match="different number of parameter groups"):
        est.set_extra_state({**state, "optimizer": {**state["optimizer"],
                                                    "param_groups": groups * 2}})
    short = [{**groups[0], "params": groups[0]["params"][:-1]}]
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        est.set_extra_state({**state, "optimizer": {**state["optimizer"], "param_groups": short}})


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
