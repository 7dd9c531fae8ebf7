"""The forward/backward contract every registered estimator must meet (see ``registry.py``).

Each test runs for every (estimator spec, black box) pair the spec supports, so an estimator added
to ``registry.SPECS`` gets the whole suite for free.
"""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from .contract_run import Affine, expected_output, gradient, make_layer
from .registry import PAIRS, SPECS, gen

PAIR_PARAMS = [pytest.param(s, c, id=f"{s.name}-{c.name}") for s, c in PAIRS]
DTYPES = [pytest.param(torch.float32, id="f32"), pytest.param(torch.float64, id="f64")]


def sample_x(seed: int, shape: tuple[int, ...] = (4, 3, 2), dtype=torch.float64) -> torch.Tensor:
    return 1.5 * torch.randn(shape, generator=gen(seed), dtype=dtype)


def params_of(layer: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in layer.parameters()]


def test_registry_covers_every_spec_and_flags_match_the_classes():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), "spec names must be unique"
    x = sample_x(0)
    for spec in SPECS:
        assert any(s is spec for s, _ in PAIRS), f"{spec.name} supports no black box"
        case = next(c for s, c in PAIRS if s is spec)
        est = make_layer(spec, case, 0, x).estimator
        assert type(est).calls_fn_in_backward is spec.calls_fn_in_backward, spec.name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_forward_returns_fn_output_exactly(spec, case, dtype):
    x = sample_x(1, dtype=dtype).requires_grad_(True)
    layer = make_layer(spec, case, seed=0, x=x)
    y = layer(x)
    want = expected_output(case, x)
    assert y.shape == want.shape
    assert y.dtype == want.dtype
    assert y.device == x.device
    assert torch.equal(y, want)
    # real outputs are attached to the graph; index outputs are not differentiable
    assert y.requires_grad is y.is_floating_point()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_backward_gives_gradient_of_input_shape_and_dtype(spec, case, dtype):
    x = sample_x(2, dtype=dtype)
    g = gradient(make_layer(spec, case, seed=0, x=x), x, seed=5)
    assert g.shape == x.shape
    assert g.dtype == x.dtype
    assert bool(torch.isfinite(g).all())


@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_same_seed_gives_identical_gradients(spec, case):
    xs = [sample_x(10 + t) for t in range(3)]
    a, b = (make_layer(spec, case, seed=3, x=xs[0]) for _ in range(2))
    for t, x in enumerate(xs):
        assert torch.equal(gradient(a, x, seed=t), gradient(b, x, seed=t))
        assert a.stats == b.stats
    if spec.stochastic:  # and the seed is what drives the randomness
        c = make_layer(spec, case, seed=4, x=xs[0])
        d = make_layer(spec, case, seed=3, x=xs[0])
        assert not torch.equal(gradient(c, xs[0], seed=0), gradient(d, xs[0], seed=0))


@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_fn_calls_in_backward_match_the_spec(spec, case):
    x = sample_x(3).requires_grad_(True)
    layer = make_layer(spec, case, seed=0, x=x)
    y = layer(x)
    out = y if y.is_floating_point() else layer.predict(x)
    before = layer.blackbox.calls
    out.sum().backward()
    if spec.calls_fn_in_backward:
        assert layer.blackbox.calls > before
    else:
        assert layer.blackbox.calls == before


@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_eval_mode_calls_fn_once_per_forward_and_fits_nothing(spec, case):
    x = sample_x(4)
    layer = make_layer(spec, case, seed=0, x=x).eval()
    weights = params_of(layer)
    for t in range(3):
        before = layer.blackbox.calls
        layer(sample_x(20 + t))
        assert layer.blackbox.calls == before + 1
    assert layer.stats is None  # no surrogate fit happened
    assert all(torch.equal(p, q) for p, q in zip(weights, params_of(layer), strict=True))


@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_works_inside_sequential(spec, case):
    x = sample_x(5).requires_grad_(True)
    front = Affine(x.dtype)
    seq = nn.Sequential(front, make_layer(spec, case, seed=0, x=x))
    y = seq(x)
    assert torch.equal(y, expected_output(case, front(x)))
    if y.is_floating_point():
        y.backward(torch.randn(y.shape, generator=gen(0), dtype=y.dtype))
        assert front.weight.grad is not None and bool(torch.isfinite(front.weight.grad))
        assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_train_and_eval_propagate(spec, case):
    x = sample_x(6)
    seq = nn.Sequential(Affine(x.dtype), make_layer(spec, case, seed=0, x=x))
    for mode in (False, True):
        seq.train(mode)
        assert [m.training for m in seq.modules()] == [mode] * len(list(seq.modules()))
    seq.eval()
    assert not seq[1].estimator.training


@pytest.mark.parametrize("via", ["memory", "file"])
@pytest.mark.parametrize("spec,case", PAIR_PARAMS)
def test_state_dict_round_trip_continues_identically(spec, case, via):
    """Fresh construction (other seed) + load_state_dict == the original, step for step.

    Covers the surrogate model, its optimiser state and the sampler RNG (Surrogate), and the noise
    RNG (ES). The two layers are stepped alternately, so shared (aliased) state would show.
    """
    xs = [sample_x(30 + t) for t in range(5)]
    a = make_layer(spec, case, seed=1, x=xs[0])
    for t in range(2):
        gradient(a, xs[t], seed=t)
    state = a.state_dict()
    if via == "file":
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=True)
    b = make_layer(spec, case, seed=2, x=xs[0])
    b.load_state_dict(state)
    for t in range(2, 5):
        ga, gb = gradient(a, xs[t], seed=t), gradient(b, xs[t], seed=t)
        assert torch.equal(ga, gb), f"step {t}"
        assert a.stats == b.stats, f"step {t}"


# ---------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("spec", [pytest.param(s, id=s.name) for s in SPECS])
@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(
    data=st.data(),
    batch=st.integers(1, 7),
    trailing=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_any_batch_and_trailing_shape(spec, data, batch, trailing, dtype, seed):
    case = data.draw(st.sampled_from([c for s, c in PAIRS if s is spec]), label="case")
    x = sample_x(seed, (batch, *trailing), dtype)
    layer = make_layer(spec, case, seed=seed, x=x)
    y = layer(x)
    want = expected_output(case, x)
    assert y.dtype == want.dtype and torch.equal(y, want)
    g = gradient(layer, x, seed=seed)
    assert g.shape == x.shape and g.dtype == x.dtype
