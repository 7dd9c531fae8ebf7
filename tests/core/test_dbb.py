"""DBB (Vlastelica et al., 2020) against its published formula, and against PyEPO's blackboxOpt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffbypass import DBB, Bypass


def onehot_min(c):
    return F.one_hot(c.argmin(-1), c.shape[-1]).to(c.dtype)


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


def test_errors():
    with pytest.raises(ValueError, match="lam must be"):
        DBB(lam=0.0)
    layer = Bypass(lambda t: t.sum(1, keepdim=True), DBB())
    with pytest.raises(ValueError, match=r"DBB needs fn's output to have the input's shape \(2, 3"):
        layer(torch.zeros(2, 3))


def test_matches_pyepo_blackboxopt():
    pyepo = pytest.importorskip("pyepo")
    pytest.importorskip("gurobipy")
    from pyepo.model.grb import shortestPathModel

    model = shortestPathModel((3, 3))
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(4, model.num_cost, generator=g, dtype=torch.float64) + 0.1
    v = torch.randn(4, model.num_cost, generator=g, dtype=torch.float64)

    def solve(c):
        out = []
        for row in c.numpy():
            model.setObj(row)
            out.append(model.solve()[0])
        return torch.from_numpy(np.array(out)).to(c.dtype)

    ours = cost.clone().requires_grad_(True)
    Bypass(solve, DBB(lam=5.0))(ours).backward(v)
    theirs = cost.clone().requires_grad_(True)
    pyepo.func.blackboxOpt(model, lambd=5.0)(theirs).backward(v)
    assert torch.allclose(ours.grad, theirs.grad.to(ours.dtype))
