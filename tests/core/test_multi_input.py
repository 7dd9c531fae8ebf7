"""Black boxes with several arguments and outputs (see ``multi_input_registry.py``): every
registered estimator's gradient per argument against autograd, shared arguments summed over the
batch, tuple and integer outputs, pytree arguments, executors, and the error messages."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from diffbypass import (
    DBB, ES, Bypass, FiniteDifference, Perturbed, ReplayBuffer, StraightThrough,
    Surrogate, check_gradient,
)  # fmt: skip

from .multi_input_registry import (
    SHARED, SIGMA, SPECS, QuadNet, arguments, gen, quad, quad_pair, quad_tree,
)  # fmt: skip

SPEC_PARAMS = [pytest.param(s, id=s.name) for s in SPECS]


def autograd_grads(fn, args, weights):
    """Autograd's gradient of ``sum_k <weights[k], fn(args)[k]>`` for every float tensor arg."""
    leaves = [a.detach().clone().requires_grad_(True) if torch.is_tensor(a) else a for a in args]
    ys = fn(*leaves)
    ys = ys if isinstance(ys, tuple) else (ys,)
    total = sum((y * w).sum() for y, w in zip(ys, weights) if y.is_floating_point())
    wrt = [t for t in leaves if torch.is_tensor(t)]
    return torch.autograd.grad(total, wrt)


def bypass_grads(layer, fn_args, weights):
    leaves = [a.detach().clone().requires_grad_(True) if torch.is_tensor(a) else a for a in fn_args]
    ys = layer(*leaves)
    ys = ys if isinstance(ys, tuple) else (ys,)
    sum((y * w).sum() for y, w in zip(ys, weights) if y.is_floating_point()).backward()
    return [t.grad for t in leaves if torch.is_tensor(t)], ys


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("spec", SPEC_PARAMS)
def test_gradient_per_argument_matches_autograd(spec):
    args = arguments(0)
    v = (torch.randn(5, 3, generator=gen(1), dtype=torch.float64),)
    want = autograd_grads(quad, args, v)
    layer = Bypass(quad, spec.make(0), shared=SHARED)
    got, ys = bypass_grads(layer, args, v)
    assert torch.equal(ys[0], quad(*args))  # the forward is fn's exact output
    for name, g, w, factor in zip(("x", "aux", "theta"), got, want, spec.factors):
        assert g.shape == w.shape, name
        assert rel_err(g, factor * w) <= spec.rtol, (name, rel_err(g, factor * w))


@pytest.mark.parametrize("spec", [s for s in SPEC_PARAMS if s.values[0].rtol < 1e-6])
def test_shared_gradient_is_the_sum_over_the_batch(spec):
    x, aux, theta, k = arguments(2, batch=1)
    v = torch.randn(1, 3, generator=gen(3), dtype=torch.float64)
    one = bypass_grads(Bypass(quad, spec.make(0), shared=SHARED), (x, aux, theta, k), (v,))[0]
    rep = lambda t: t.expand(4, *t.shape[1:])  # noqa: E731
    four = bypass_grads(Bypass(quad, spec.make(0), shared=(2,)), (rep(x), rep(aux), theta, k),
                        (rep(v),))[0]  # fmt: skip
    assert torch.allclose(four[2], 4 * one[2], rtol=1e-6, atol=1e-9)  # theta: 4 identical items
    assert torch.allclose(four[0], rep(one[0]), rtol=1e-6, atol=1e-9)  # x: per item


@pytest.mark.parametrize("make", [lambda: FiniteDifference(eps=1e-5),
                                  lambda: Surrogate(QuadNet(exact=True), fit_steps=0),
                                  lambda: ES(sigma=SIGMA, samples=8000, generator=gen(0))],
                         ids=["finite_difference", "surrogate", "es"])  # fmt: skip
def test_tuple_outputs_each_with_its_gradient_and_integer_part_without(make):
    args = arguments(4)
    g = gen(5)
    v = (torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64))
    want = autograd_grads(quad_pair, args, v)
    if isinstance(make(), Surrogate):  # the network returns the same three outputs
        net = QuadNet(exact=True)
        est = Surrogate(_PairNet(net), fit_steps=0)
    else:
        est = make()
    got, ys = bypass_grads(Bypass(quad_pair, est, shared=SHARED), args, v + (None,))
    assert len(ys) == 3 and ys[2].dtype == torch.int64 and not ys[2].requires_grad
    assert torch.equal(ys[2], quad_pair(*args)[2])
    tol = 0.12 if isinstance(est, ES) else 1e-6
    for g_, w in zip(got, want):
        assert rel_err(g_, w) <= tol


class _PairNet(nn.Module):
    def __init__(self, net: QuadNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, aux, theta, k):
        y = self.net(x, aux, theta, k)
        return y, y.sum(1), torch.zeros(len(y), 1, 1)  # logits of one class for the index


@pytest.mark.parametrize("make", [lambda: FiniteDifference(eps=1e-5),
                                  lambda: ES(sigma={"inputs": 0.2, "theta": 0.1}, samples=8000, generator=gen(0))],
                         ids=["finite_difference", "es"])  # fmt: skip
def test_pytree_argument(make):
    x, aux, theta, k = arguments(6)
    v = torch.randn(5, 3, generator=gen(7), dtype=torch.float64)
    want = autograd_grads(quad, (x, aux, theta, k), (v,))
    xs, auxs = x.clone().requires_grad_(True), aux.clone().requires_grad_(True)
    th = theta.clone().requires_grad_(True)
    layer = Bypass(quad_tree, make(), shared=("theta",))
    (layer({"x": xs, "aux": auxs}, th, k) * v).sum().backward()
    tol = 0.12 if isinstance(layer.estimator, ES) else 1e-7
    for g_, w in zip((xs.grad, auxs.grad, th.grad), want):
        assert rel_err(g_, w) <= tol


def test_only_arguments_that_require_grad_are_perturbed_and_differentiated():
    x, aux, theta, k = arguments(8)
    seen = []

    def fn(x, aux, theta, k):
        seen.append((aux.clone(), k))
        return quad(x, aux, theta, k)

    xs = x.clone().requires_grad_(True)
    (Bypass(fn, ES(sigma=0.1, samples=4, generator=gen(0)), shared=SHARED)(xs, aux, theta, k)).sum().backward()
    assert xs.grad is not None
    assert all(torch.equal(a[: len(aux)], aux) and kk == 3 for a, kk in seen)  # aux never moved


def test_one_argument_by_keyword_is_bit_identical_to_the_single_input_path():
    x = torch.randn(6, 3, generator=gen(9), dtype=torch.float64)
    grads = []
    for call in (lambda layer, t: layer(t), lambda layer, t: layer(x=t)):
        t = x.clone().requires_grad_(True)
        layer = Bypass(lambda x: torch.sin(x) * x.sum(1, keepdim=True), ES(sigma=0.3, samples=8, generator=gen(1)))
        call(layer, t).backward(torch.ones(6, 3, dtype=torch.float64))
        grads.append(t.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("max_batch", [None, 2])
def test_executor_and_chunks_give_the_same_gradient(max_batch):
    args = arguments(10)
    v = (torch.randn(5, 3, generator=gen(11), dtype=torch.float64),)
    plain = bypass_grads(Bypass(quad, ES(sigma=SIGMA, samples=6, generator=gen(2)), shared=SHARED), args, v)[0]
    with ThreadPoolExecutor(2) as pool:
        layer = Bypass(quad, ES(sigma=SIGMA, samples=6, generator=gen(2)), shared=SHARED,
                       executor=pool, max_batch=max_batch)  # fmt: skip
        other = bypass_grads(layer, args, v)[0]
    for a, b in zip(plain, other):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)
    if max_batch:  # one call per sample (theta perturbed), each split into chunks of 2, + forward
        assert layer.blackbox.calls == 3 + 6 * 3


def test_fn_cannot_change_the_callers_tensors():
    def writes(x, theta):
        out = x * theta
        x.zero_()
        theta.zero_()
        return out

    x, theta = torch.ones(2, 3), torch.full((3,), 2.0)
    Bypass(writes, FiniteDifference(), shared=("theta",))(x.requires_grad_(), theta.requires_grad_()).sum().backward()
    assert bool((x == 1).all()) and bool((theta == 2).all())


class Simulator(nn.Module):
    """The idiom: a black box with learnable parameters is a module holding ``nn.Parameter``s
    and passing them to its Bypass as shared arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.ones(3, dtype=torch.float64))
        self.bypass = Bypass(quad, FiniteDifference(eps=1e-5), shared=("theta",))

    def forward(self, x, aux):
        return self.bypass(x, aux, self.theta, 3)


def test_module_with_parameters_trains_them_through_the_bypass():
    x, aux, truth, k = arguments(12, batch=16)
    target = quad(x, aux, truth, k)
    sim = Simulator()
    opt = torch.optim.Adam(sim.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss = ((sim(x, aux) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert rel_err(sim.theta.detach(), truth) < 0.01


def test_check_gradient_reports_a_cosine_per_argument():
    args = arguments(13)
    est = ES(sigma=SIGMA, samples=4000, generator=gen(0))
    check = check_gradient(est, quad, args, shared=SHARED)
    assert set(check.per_argument) == {"x", "aux", "theta"}
    assert all(c.cosine > 0.98 for c in check.per_argument.values())
    assert check.per_argument["x"].per_sample_cosine.shape == (5,)
    assert "theta: cosine" in str(check)
    exact = check_gradient(Bypass(quad, FiniteDifference(eps=1e-5), shared=SHARED), None, args)
    assert exact.cosine > 1 - 1e-9


x0, a0, t0, _ = arguments(14)
ERRORS = [
    (lambda: Bypass(quad, ES(sigma=0.1, samples=2))(x0, a0, t0, 3), TypeError,
     r"fn was called with several tensor arguments \('x', 'aux', 'theta'\): say which are shared"),
    (lambda: Bypass(quad, ES(sigma=0.1, samples=2), shared=("thta",)), ValueError,
     r"shared names 'thta', which is not a parameter of fn; fn's parameters are \('x', 'aux', 'theta', 'k', 'w'\)"),
    (lambda: Bypass(quad, ES(sigma=0.1, samples=2), shared=(7,)), ValueError,
     r"shared position 7 is out of range: fn takes 5 parameter\(s\)"),
    (lambda: Bypass(quad, ES(sigma=0.1, samples=2), shared=())(x0, a0[:3], t0, 3), ValueError,
     r"the batched arguments disagree on the batch size \(leading dimension\): x has 5, aux has 3, theta has 3"),
    (lambda: Bypass(quad, ES(sigma=0.1, samples=2), shared=("theta",))(torch.tensor(1.0), a0, t0, 3),
     ValueError, r"argument x is batched and needs a leading batch dimension; got a 0-d tensor. "
     r"If it is shared by the batch, pass shared=\('x',\)"),
]


@pytest.mark.parametrize("build,exc,match", ERRORS)
def test_argument_errors(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


def _backward(est, fn=quad, shared=SHARED):
    xs = x0.clone().requires_grad_(True)
    ys = Bypass(fn, est, shared=shared)(xs, a0, t0.clone().requires_grad_(True), 3)
    (ys[0] if isinstance(ys, tuple) else ys).sum().backward()


@pytest.mark.parametrize("est,exc,match", [
    (ES(sigma={"x": 0.1}, samples=2), ValueError,
     r"sigma has no scale for the argument 'theta' \(it names \('x',\)\); give every argument"),
    (ES(sigma={"x": 0.1, "theta": 0.1, "tehta": 1.0}, samples=2), ValueError,
     r"sigma names 'tehta', which is not a parameter of fn"),
    (ES(sigma=(0.1,), samples=2), ValueError, r"sigma has 1 scale\(s\), one per parameter of fn in order; the argument 'theta' is parameter 2"),
    (StraightThrough(), TypeError,
     r"StraightThrough maps the output's gradient onto the input, so it needs exactly one batched "
     r"argument that requires grad and one output; got the differentiable argument\(s\) x \(batched\), theta \(shared\)"),
    (DBB(), TypeError, r"DBB maps the output's gradient onto the input"),
    (Surrogate(QuadNet(exact=True), replay=ReplayBuffer(8)), TypeError,
     r"Surrogate\(replay=ReplayBuffer\(...\)\) stores one input tensor per pair and cannot store "
     r"the arguments \('x', 'aux', 'theta'\)"),
])  # fmt: skip
def test_estimator_errors(est, exc, match):
    with pytest.raises(exc, match=match):
        _backward(est)


def test_integer_only_outputs_say_they_carry_no_gradient():
    fn = lambda x, aux, theta, k: (quad(x, aux, theta, k).argmax(1),)  # noqa: E731
    with pytest.raises(TypeError, match=r"ES needs a real-valued fn output; got only integer "
                                        r"outputs \(torch.int64\), which carry no gradient"):  # fmt: skip
        _backward(ES(sigma=0.1, samples=2), fn=fn)
    with pytest.raises(TypeError, match=r"Perturbed needs a real-valued fn output"):
        _backward(Perturbed(sigma=0.1, samples=2), fn=fn)
