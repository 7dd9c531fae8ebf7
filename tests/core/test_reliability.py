"""Issue #8 (core): no corrupted input, no silent NaN, no silent zero gradient, clear errors.

Each test here fails on the code before the fix; ``docs/reliability.md`` lists them.
"""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffbypass import (
    ES,
    BlackBoxError,
    Bypass,
    ESStats,
    FiniteDifference,
    StraightThrough,
    Surrogate,
)

from . import _fns
from .registry import gen


def surrogate(in_features=3, out_features=3, dtype=torch.float32, **kw):
    kw = {"samples": 4, "fit_steps": 2, "lr": 1e-2, "generator": gen(0), **kw}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(in_features, out_features).to(dtype)
    return Surrogate(model, **kw)


def vandal(z):
    """A black box that writes into its input: ``a = np.asarray(z); a *= 2``."""
    a = np.asarray(z)
    out = np.sin(a)
    a *= 2
    return out


# ---------------------------------------------------------------------------------- fn's input
ESTIMATORS = {
    "es": lambda: ES(sigma=0.5, samples=4, generator=gen(0)),
    "surrogate": lambda: surrogate(dtype=torch.float64),
    "straight_through": StraightThrough,
    "finite_difference": lambda: FiniteDifference(eps=1e-3),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("pool", [False, True], ids=["in-thread", "thread-pool"])
def test_fn_writing_into_its_input_cannot_change_the_callers_tensor(name, pool):
    x0 = torch.randn(2, 3, generator=gen(1), dtype=torch.float64)
    x = x0.clone().requires_grad_(True)
    with ThreadPoolExecutor(2) as executor:
        layer = Bypass(vandal, ESTIMATORS[name](), executor=executor if pool else None)
        y = layer(x)
        assert torch.equal(x.detach(), x0)  # the activation is intact after the forward
        assert torch.allclose(y, torch.sin(x0))
        y.sum().backward()
    assert torch.equal(x.detach(), x0)


def test_fit_samples_are_not_corrupted_by_fn():
    """The surrogate trains on the inputs fn was evaluated at, not on what fn wrote there."""

    def poison(z):
        out = z.clone()
        z.fill_(float("nan"))
        return out

    layer = Bypass(poison, surrogate())
    x = torch.randn(2, 3, generator=gen(1), requires_grad=True)
    layer(x).sum().backward()
    assert all(torch.isfinite(p).all() for p in layer.estimator.model.parameters())
    assert np.isfinite(layer.stats.loss_last) and torch.isfinite(x.grad).all()


def test_a_reused_output_buffer_does_not_change_the_forward_output():
    buffer = np.zeros((2, 3))

    def fn(z):
        buffer[:] = z.numpy() * 3
        return buffer  # the same array at every call

    x = torch.ones(2, 3, requires_grad=True)
    layer = Bypass(fn, ES(sigma=0.5, samples=4, generator=gen(0)), max_batch=2)
    y = layer(x)
    y.sum().backward()  # the ES samples overwrite the buffer
    assert torch.equal(y, torch.full((2, 3), 3.0, dtype=torch.float64))


# ---------------------------------------------------------------------------------- diverging fit
def nan_loss(pred, target):
    return F.mse_loss(pred, target) * float("nan")


def inf_gradient(pred, target):
    return F.mse_loss(pred, target) + (pred - pred.detach()).abs().sqrt().sum()  # d/dp at 0: inf


def nan_gradient(pred, target):
    return F.mse_loss(pred, target) + 0 * (pred - pred.detach()).abs().sqrt().sum()  # 0 * inf


class _Scaled(nn.Module):
    """A surrogate of ``fn(x, w)`` for a black box with two arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x, w):
        return self.linear(x * w)


@pytest.mark.parametrize("several", [False, True], ids=["one_argument", "several_arguments"])
@pytest.mark.parametrize(
    "loss,kind", [(nan_loss, "loss"), (inf_gradient, "gradient"), (nan_gradient, "gradient")],
    ids=["loss", "inf-gradient", "nan-gradient"],
)
def test_a_diverging_fit_raises_and_leaves_the_model_unchanged(loss, kind, several):
    """One fit loop and one message for one argument and several (which said "loss or
    gradient" and no step count)."""
    if several:
        est = Surrogate(_Scaled(), samples=4, fit_steps=2, fit_loss=loss, generator=gen(0))
        x = torch.randn(2, 3, generator=gen(1), requires_grad=True)
        w = torch.randn(2, 3, generator=gen(2), requires_grad=True)
        call = lambda: Bypass(lambda x, w: torch.sin(x * w), est, shared=())(x, w)  # noqa: E731
    else:
        est = surrogate(fit_loss=loss)
        call = lambda: Bypass(torch.sin, est)(torch.randn(2, 3, generator=gen(1)))  # noqa: E731
    before = {k: v.clone() for k, v in est.model.state_dict().items()}
    with pytest.raises(
        FloatingPointError,
        match=rf"surrogate fit step 1 of 2 had a NaN/inf {kind} .*that step was skipped .*"
        r"pass nonfinite_fit='skip' to Surrogate",
    ):
        call()
    after = est.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in est.model.parameters())


def test_nonfinite_fit_skip_reports_the_skipped_steps():
    est = surrogate(fit_loss=nan_loss, nonfinite_fit="skip")
    before = {k: v.clone() for k, v in est.model.state_dict().items()}
    x = torch.randn(2, 3, generator=gen(1), requires_grad=True)
    layer = Bypass(torch.sin, est)
    layer(x).sum().backward()
    assert (layer.stats.skipped, layer.stats.steps) == (2, 0)
    assert all(torch.equal(before[k], v) for k, v in est.model.state_dict().items())
    assert torch.isfinite(x.grad).all()  # the upstream gradient is not poisoned


def test_nonfinite_fit_is_validated():
    with pytest.raises(ValueError, match=r"nonfinite_fit must be one of 'raise', 'skip'; got 'x'"):
        surrogate(nonfinite_fit="x")


# ---------------------------------------------------------------------------------- ES telemetry
def nan_at(samples, items):
    """Finite in the forward (2 items); NaN at ``[samples, items]`` of the ES samples ``(S, 2)``."""

    def fn(z):
        y = torch.sin(z)
        if z.shape[0] > 2:
            y.view(-1, 2, *y.shape[1:])[samples, items] = float("nan")
        return y

    return fn


def test_es_with_every_sample_of_an_item_dropped_raises():
    x = torch.randn(2, 3, generator=gen(1), requires_grad=True)
    y = Bypass(nan_at(slice(None), 1), ES(sigma=0.5, samples=4, generator=gen(0)), nonfinite="drop")(x)
    with pytest.raises(
        BlackBoxError,
        match=r"every perturbed sample of ES samples was NaN/inf for batch item\(s\) \[1\] "
        r"\(4 samples each\): no sample left",
    ):
        y.sum().backward()


def test_es_reports_samples_dropped_and_spread_through_its_hook():
    seen = []
    est = ES(sigma=0.5, samples=4, generator=gen(0))
    handle = est.register_fit_hook(lambda e, s: seen.append((e, s)))
    x = torch.randn(2, 3, generator=gen(1), requires_grad=True)
    layer = Bypass(nan_at(slice(0, 3), 0), est, nonfinite="drop")  # 3 of item 0's 4 samples
    assert layer.stats is None
    layer(x).sum().backward()
    stats = layer.stats
    assert isinstance(stats, ESStats) and seen == [(est, stats)]
    assert (stats.samples, stats.dropped) == (5, 3) and stats.value_std > 0
    assert torch.isfinite(x.grad).all() and (x.grad.abs().sum(dim=1) > 0).all()
    handle.remove()
    layer(x).sum().backward()
    assert len(seen) == 1


# ---------------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize("dtype", [torch.float64, torch.int64], ids=["float64", "int64"])
def test_input_dtype_is_cast_to_the_surrogates(dtype):
    x = torch.arange(6, dtype=dtype).reshape(2, 3)
    layer = Bypass(lambda z: z.double() * 2, surrogate(dtype=torch.float32))
    y = layer(x)  # fits on float32 copies of float64/int64 inputs
    assert torch.equal(y, x.double() * 2)
    if dtype.is_floating_point:
        xx = x.clone().requires_grad_(True)
        layer(xx).sum().backward()
        assert xx.grad.dtype == torch.float64
    assert layer.predict(x).dtype == torch.float32


def test_a_training_surrogate_under_inference_mode_says_what_to_do():
    layer = Bypass(torch.sin, surrogate())
    with torch.inference_mode(), pytest.raises(
        RuntimeError,
        match=r"Surrogate is in training mode.*torch.inference_mode\(\) is active; call \.eval\(\)",
    ):
        layer(torch.zeros(2, 3))
    layer.eval()
    with torch.inference_mode():
        assert torch.equal(layer(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_an_unpicklable_fn_for_a_process_pool_says_pickling():
    with ProcessPoolExecutor(1) as pool, pytest.raises(
        TypeError, match=r"fn cannot be pickled for the process pool \(.*\); define it at module"
    ):
        Bypass(lambda z: z, StraightThrough(), executor=pool)


class PicklingPool(ThreadPoolExecutor):
    """Pickles each task like a process pool would, but runs it in a thread."""

    def submit(self, fn, *args, **kwargs):
        return super().submit(lambda: fn(*pickle.loads(pickle.dumps(args))))


def test_a_pickling_failure_at_dispatch_says_pickling():
    with PicklingPool(1) as pool:
        layer = Bypass(lambda z: z, StraightThrough(), executor=pool)
        with pytest.raises(
            BlackBoxError, match=r"could not pickle fn or its input to send forward to the executor"
        ):
            layer(torch.zeros(2, 3))


def test_a_shut_down_executor_is_named():
    pool = ThreadPoolExecutor(1)
    layer = Bypass(torch.sin, StraightThrough(), executor=pool)
    pool.shutdown()
    with pytest.raises(
        BlackBoxError,
        match=r"could not submit forward to the executor: it has been shut down \(RuntimeError",
    ):
        layer(torch.zeros(2, 3))


@pytest.mark.parametrize(
    "out,match",
    [
        (3.0, r"fn returned a scalar \(float '3.0'\) in forward; expected an output with a leading"),
        ("abc", r"fn returned a scalar \(str 'abc'\) in forward"),
        (np.array(["a", "b"]), r"fn returned a NumPy array of dtype <U1 and shape \(2,\) in forward"),
        (np.array(["2020-01-01"] * 2, dtype="datetime64[D]"), r"dtype datetime64\[D\] and shape"),
    ],
    ids=["float", "str", "str-array", "datetime-array"],
)
def test_scalar_and_non_numeric_outputs_name_what_came_back(out, match):
    with pytest.raises(BlackBoxError, match=match):
        Bypass(lambda z: out, StraightThrough())(torch.zeros(2))


def test_chunk_ranges_are_one_based_and_clipped_to_the_samples():
    calls = []

    def fn(z):
        calls.append(1)
        if len(calls) == 5:  # forward, then chunks 1..3 fine, chunk 4 (the last, 1 sample) raises
            raise ValueError("boom")
        return torch.sin(z)

    x = torch.zeros(2, 3, requires_grad=True)
    y = Bypass(fn, ES(sigma=1.0, samples=8, generator=gen(0)), max_batch=5)(x)
    with pytest.raises(
        BlackBoxError, match=r"^fn raised in ES samples, chunk 4 of 4 \(flat samples 16\.\.16 of 16\)$"
    ):
        y.sum().backward()


def test_shape_errors_name_the_chunk_like_raise_errors():
    x = torch.zeros(4, 2, requires_grad=True)
    layer = Bypass(lambda t: t[:4].clone(), ES(sigma=1.0, samples=2, generator=gen(0)), max_batch=5)
    y = layer(x)  # 4 items: fine
    with pytest.raises(
        BlackBoxError,
        match=r"dimension 5; got shape \(4, 2\) in ES samples, chunk 1 of 2 "
        r"\(flat samples 1\.\.5 of 8\)$",
    ):
        y.sum().backward()


def test_helpers_pickle():
    assert pickle.loads(pickle.dumps(_fns.KillOnce("m"))).marker == "m"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, "mixed"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_finite_gradient_check_finds_one_bad_value_anywhere_and_changes_nothing(dtype, bad):
    """The fit step's check (AMP's fused kernel, or the max-norms for a mixed-dtype model)
    against a brute-force reference: one NaN/inf in any gradient tensor, at any position."""
    from diffbypass.estimators._fit_loop import _finite_step

    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(4, 5))
    model.to(torch.float32 if dtype == "mixed" else dtype)
    if dtype == "mixed":
        model[1].to(torch.float64)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen(p.numel())).to(p.dtype)
    model[0].weight.grad = model[0].weight.grad.to(memory_format=torch.channels_last)
    clean = [p.grad.clone() for p in model.parameters()]
    assert _finite_step(model, 0.5)
    assert all(torch.equal(a, p.grad) for a, p in zip(clean, model.parameters()))
    assert not _finite_step(model, float("nan"))
    for p in model.parameters():
        for index in (0, p.numel() // 2, p.numel() - 1):
            p.grad[torch.unravel_index(torch.tensor(index), p.shape)] = bad
            assert not _finite_step(model, 0.5)
            p.grad.copy_(clean[[q is p for q in model.parameters()].index(True)])
    model[1].weight.grad = None  # a parameter without a gradient is left out
    assert _finite_step(model, 0.5)
