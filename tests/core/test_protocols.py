"""The declared abilities of estimators (diffbypass.base): Predictor, Reporter, Smoothed, Evaluator."""

from __future__ import annotations

import pytest
import torch

from diffbypass import ES, BlackBox, Bypass, FiniteDifference, StraightThrough, Surrogate
from diffbypass.base import Estimator, Evaluator, Predictor, Reporter, Smoothed

from .registry import gen


class Doubling(Estimator):
    """A third-party estimator that declares every ability by having it, nothing else."""

    calls_fn_in_backward = False

    def __init__(self) -> None:
        super().__init__()
        self.stats = "fresh"
        self.sigma = 0.25

    def predict(self, x):
        return 2 * x

    def vjp(self, blackbox: Evaluator, x, y, grad_y):
        self.stats = "updated"
        return 2 * grad_y


def test_builtin_estimators_declare_what_they_can_do():
    surrogate = Surrogate(torch.nn.Linear(2, 2), generator=gen(0))
    es = ES(sigma=0.5, samples=2, generator=gen(0))
    assert isinstance(surrogate, Predictor) and isinstance(surrogate, Reporter)
    assert isinstance(es, Reporter) and not isinstance(es, Predictor)
    assert isinstance(surrogate, Smoothed) and isinstance(es, Smoothed)
    for plain in (StraightThrough(), FiniteDifference()):
        assert not isinstance(plain, (Predictor, Reporter, Smoothed))


def test_bypass_uses_a_third_party_estimators_abilities():
    layer = Bypass(torch.round, Doubling())
    x = torch.ones(2, 3, requires_grad=True)
    assert layer.stats == "fresh"
    layer(x).sum().backward()
    assert layer.stats == "updated" and torch.equal(x.grad, torch.full((2, 3), 2.0))
    assert torch.equal(layer.predict(x), 2 * x)


def test_estimators_without_abilities():
    layer = Bypass(torch.round, StraightThrough())
    assert layer.stats is None
    with pytest.raises(
        TypeError,
        match=r"StraightThrough has no differentiable prediction; predict\(\) needs an estimator "
        r"that is a diffbypass.base.Predictor",
    ):
        layer.predict(torch.ones(1, 2))


def test_blackbox_is_an_evaluator():
    def evaluate(blackbox: Evaluator) -> tuple[torch.Tensor, object]:
        y = blackbox(torch.ones(2, 3), what="forward")
        return y, blackbox.many(torch.ones(4, 2, 3), what="samples")[1]

    y, valid = evaluate(BlackBox(torch.sin))
    assert torch.equal(y, torch.sin(torch.ones(2, 3))) and valid is None
