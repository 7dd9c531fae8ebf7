"""DBB (Vlastelica et al., 2020) against its published formula, and against PyEPO's blackboxOpt."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from diffbypass import DBB, Bypass

from ._fns import onehot_max, onehot_min


def test_gradient_is_the_published_formula():
    """grad = -(1/lam) [y(w) - y(w')], w' = w + lam dL/dy, on hand-computable argmins."""
    c = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.4, 2.0]], requires_grad=True)
    v = torch.tensor([[2.0, 0.0, 0.0], [0.0, -1.0, 1.0]])
    y = Bypass(onehot_min, DBB(lam=0.5))(c)
    y.backward(v)
    # item 0: w' = (2, 2, 3) -> argmin 0 (first of ties) -> no change -> zero gradient
    # item 1: w' = (0.5, -0.1, 2.5) -> argmin 1, unchanged from y -> zero; then lam = 1:
    assert torch.equal(c.grad, torch.zeros_like(c))
    c2 = c.detach().clone().requires_grad_(True)
    Bypass(onehot_min, DBB(lam=1.0))(c2).backward(torch.tensor([[2.0, 0, 0], [0, 1.0, 0]]))
    # item 0: w' = (3, 2, 3) -> argmin 1: -(1/1) [(1,0,0) - (0,1,0)] = (-1, 1, 0)
    # item 1: w' = (0.5, 1.4, 2) -> argmin 0: -[(0,1,0) - (1,0,0)] = (1, -1, 0)
    want = torch.tensor([[-1.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    assert torch.equal(c2.grad, want)


def test_exact_on_a_linear_fn_with_symmetric_matrix():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    a = a + a.T
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(3, 5, generator=g, dtype=torch.float64)
    Bypass(lambda t: t @ a, DBB(lam=0.3))(x).backward(v)
    assert torch.allclose(x.grad, v @ a.T)


def test_one_extra_call_per_backward():
    layer = Bypass(onehot_min, DBB(lam=10.0))
    c = torch.randn(4, 6, requires_grad=True)
    y = layer(c)
    assert (layer.blackbox.calls, layer.blackbox.instances) == (1, 4)
    y.sum().backward()
    assert (layer.blackbox.calls, layer.blackbox.instances) == (2, 8)


def test_argmax_oracle_with_sense_max_the_issues_minimal_case():
    """Issue #22: at x = (1, 0.9, 0) with upstream (1, 0, 0), the argmin rule gave zero."""
    x = torch.tensor([[1.0, 0.9, 0.0]], requires_grad=True)
    v = torch.tensor([[1.0, 0.0, 0.0]])
    Bypass(onehot_max, DBB(lam=2.0, sense="max"))(x).backward(v)
    # x' = x - lam v = (-1, 0.9, 0) -> argmax 1: (1/lam) [(1,0,0) - (0,1,0)]
    assert torch.equal(x.grad, torch.tensor([[0.5, -0.5, 0.0]]))
    # the argmin rule on the same oracle: x + lam v = (3, 0.9, 0) -> still item 0 -> zero
    x0 = x.detach().clone().requires_grad_(True)
    Bypass(onehot_max, DBB(lam=2.0))(x0).backward(v)
    assert torch.equal(x0.grad, torch.zeros_like(x0))


def test_sense_max_is_the_min_rule_applied_to_minus_x():
    """argmax f(x) = argmin g(-x): DBB(sense="max") on f equals the chain rule through -x."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    v = torch.randn(6, 5, generator=g, dtype=torch.float64)
    ours = x.clone().requires_grad_(True)
    Bypass(onehot_max, DBB(lam=0.7, sense="max"))(ours).backward(v)
    ref = x.clone().requires_grad_(True)
    Bypass(onehot_min, DBB(lam=0.7))(-ref).backward(v)
    assert torch.equal(ours.grad, ref.grad)
    assert ours.grad.abs().sum() > 0


@pytest.mark.parametrize("lam", [1e-300, 1e300])
def test_extreme_lam_is_an_error_not_a_nan_or_zero_gradient(lam):
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = Bypass(onehot_min, DBB(lam=lam))(x)
    want = "too small for the incoming gradient" if lam < 1 else "non-finite"
    with pytest.raises(ValueError, match=rf"DBB\(lam={re.escape(f'{lam:g}')}\) .*{want}.*; (raise|lower) lam"):
        y.backward(torch.tensor([[1.0, 0.0, 0.0]]))


def test_errors():
    with pytest.raises(ValueError, match="lam must be"):
        DBB(lam=0.0)
    with pytest.raises(ValueError, match="sense must be one of 'max', 'min'; got 'argmax'"):
        DBB(sense="argmax")
    layer = Bypass(lambda t: t.sum(1, keepdim=True), DBB())
    with pytest.raises(ValueError, match=r"DBB needs fn's output to have the input's shape \(2, 3"):
        layer(torch.zeros(2, 3))


def _pyepo_solver(model):
    """``fn`` solving a PyEPO ``model`` for each row of costs (the solutions, in the costs' dtype)."""

    def solve(c):
        out = []
        for row in c.numpy():
            model.setObj(row)
            out.append(model.solve()[0])
        return torch.from_numpy(np.array(out)).to(c.dtype)

    return solve


def test_matches_pyepo_blackboxopt():
    pyepo = pytest.importorskip("pyepo")
    pytest.importorskip("gurobipy")
    from pyepo.model.grb import shortestPathModel

    model = shortestPathModel((3, 3))
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(4, model.num_cost, generator=g, dtype=torch.float64) + 0.1
    v = torch.randn(4, model.num_cost, generator=g, dtype=torch.float64)

    solve = _pyepo_solver(model)
    ours = cost.clone().requires_grad_(True)
    Bypass(solve, DBB(lam=5.0))(ours).backward(v)
    theirs = cost.clone().requires_grad_(True)
    pyepo.func.blackboxOpt(model, lambd=5.0)(theirs).backward(v)
    assert torch.allclose(ours.grad, theirs.grad.to(ours.dtype))


def test_matches_pyepo_blackboxopt_on_a_maximisation_knapsack():
    """PyEPO reads the sense from its model; DBB(sense="max") must give its gradient exactly."""
    pyepo = pytest.importorskip("pyepo")
    pytest.importorskip("gurobipy")
    from pyepo.model.grb import knapsackModel

    g = torch.Generator().manual_seed(1)
    weights = (torch.rand(2, 6, generator=g) * 3 + 1).numpy()
    model = knapsackModel(weights=weights, capacity=[6.0, 6.0])
    value = torch.rand(4, 6, generator=g, dtype=torch.float64) + 0.1
    v = torch.randn(4, 6, generator=g, dtype=torch.float64)

    solve = _pyepo_solver(model)
    ours = value.clone().requires_grad_(True)
    Bypass(solve, DBB(lam=0.5, sense="max"))(ours).backward(v)
    theirs = value.clone().requires_grad_(True)
    pyepo.func.blackboxOpt(model, lambd=0.5)(theirs).backward(v)
    assert ours.grad.abs().sum() > 0
    assert torch.allclose(ours.grad, theirs.grad.to(ours.dtype))
