"""diffbypass.losses: the fit loss owns its loss, its agreement metric and its output check."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffbypass import BlackBoxError, Bypass, Surrogate
from diffbypass.losses import FIT_LOSSES, MSE, CrossEntropy, CustomLoss, FitLoss, fit_loss

from .registry import gen


def test_names_are_looked_up_in_one_table():
    assert FIT_LOSSES == {"mse": MSE, "ce": CrossEntropy}
    assert isinstance(fit_loss("mse"), MSE) and isinstance(fit_loss("ce"), CrossEntropy)
    assert (MSE.metric, CrossEntropy.metric) == ("r2", "accuracy")


def test_callables_and_instances():
    custom = fit_loss(F.smooth_l1_loss)
    assert isinstance(custom, CustomLoss) and custom.name == "smooth_l1_loss"
    assert custom.metric == "r2" and repr(custom) == "CustomLoss(smooth_l1_loss)"
    mine = MSE()
    assert fit_loss(mine) is mine


@pytest.mark.parametrize("spec", ["l2", 3, None], ids=["name", "int", "none"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(ValueError, match=r"fit_loss must be 'mse', 'ce' or a callable; got"):
        fit_loss(spec)


def test_cross_entropy_checks_kind_shape_and_class_range_once():
    ce = CrossEntropy()
    ce.check((2, 4), torch.tensor([[0, 3]]), "forward")
    with pytest.raises(BlackBoxError, match=r"needs fn to return integer class indices"):
        ce.check((2, 4), torch.zeros(1, 2), "forward")
    with pytest.raises(BlackBoxError, match=r"logits of shape \(B, \*\(2,\), K\); got \(B, \*\(3, 4\)\)"):
        ce.check((3, 4), torch.zeros(1, 2, dtype=torch.long), "forward")
    with pytest.raises(BlackBoxError, match=r"class index 4 in fit; the surrogate has 4 classes"):
        ce.check((2, 4), torch.tensor([[0, 4]]), "fit")
    with pytest.raises(BlackBoxError, match=r"negative class index \(-2\) in fit"):
        ce.check((2, 4), torch.tensor([[0, -2]]), "fit")


class L1(FitLoss):
    """A user-defined fit loss with its own check."""

    name = "l1"
    checked: list[str] = []

    def __call__(self, prediction, target):
        return F.l1_loss(prediction, target.to(prediction.dtype))

    def check(self, prediction_shape, target, what):
        self.checked.append(what)


def test_a_user_defined_fit_loss_is_used_for_loss_metric_and_check():
    loss = L1()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(3, 3)
    est = Surrogate(model, samples=4, fit_steps=2, fit_loss=loss, generator=gen(0))
    layer = Bypass(torch.sin, est)
    layer(torch.zeros(2, 3))
    assert loss.checked == ["forward", "surrogate fit samples"]
    assert layer.stats.metric == "r2" and "fit_loss='l1'" in repr(est)


def test_mse_refuses_integer_outputs_as_es_does():
    """Issue #22: an integer fn with the default MSE fit was fitted and carried no gradient."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Linear(3, 3)
    est = Surrogate(model, samples=4, fit_steps=1, generator=gen(0))
    layer = Bypass(lambda x: (x > 0).long(), est)
    x = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(
        TypeError,
        match=r"Surrogate\(fit_loss='mse'\) needs a real-valued fn output; got torch.int64\. "
        r"Integer outputs carry no gradient: .* or use fit_loss='ce'",
    ):
        layer(x)
    assert layer.stats is None  # refused before any fit
