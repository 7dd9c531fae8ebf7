"""Weight averaging (``--average``, lvseg.averaging): the EMA against its closed form, the warm-up
schedule, what validation and ``best.pt`` use, and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lvseg.averaging import WeightAverage
from lvseg.checkpoint import load_checkpoint
from lvseg.config import TrainConfig
from lvseg.methods import unet_of
from lvseg.score import score
from lvseg.train import Trainer
from lvseg_testing import same, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_average_is_the_closed_form_of_the_warmed_up_ema() -> None:
    model = nn.Linear(3, 2)
    start = [p.detach().clone() for p in model.parameters()]
    average = WeightAverage(model, 0.9, warmup=True)
    seen = []
    for t in range(1, 8):  # the "optimiser step" sets each weight to t
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(t))
        average.update(model, t)
        seen.append(t)
    # closed form: avg_T = prod d_t * avg_0 + sum_t (1 - d_t) prod_{s > t} d_s * theta_t
    d = [min(0.9, (1 + t) / (10 + t)) for t in seen]
    assert d[0] == pytest.approx(2 / 11) and average.decay_at(100) == pytest.approx(0.9)
    for p0, avg in zip(start, average.unet.parameters(), strict=True):
        expected = p0 * torch.tensor(d).prod()
        for k, t in enumerate(seen):
            expected = expected + (1 - d[k]) * torch.tensor(d[k + 1:]).prod() * t
        torch.testing.assert_close(avg, expected)
    assert not any(p.requires_grad for p in average.unet.parameters())


def test_without_warmup_the_decay_is_constant() -> None:
    average = WeightAverage(nn.Linear(1, 1), 0.99)
    assert [average.decay_at(t) for t in (1, 10, 1000)] == [0.99, 0.99, 0.99]


def test_the_average_follows_a_learned_smoothness_penalty() -> None:
    from lvseg.methods import build_model

    model = build_model(tiny_config("edpcnn", learn_smoothness=True))
    average = WeightAverage(model, 0.5)
    with torch.no_grad():
        model.log_smoothness.add_(2.0)
    average.update(model, 1)
    star = average.star(TrainConfig(method="edpcnn").star)
    assert star.smoothness == pytest.approx(float((model.log_smoothness.detach() - 1.0).exp()))
    state = average.model_state(model)
    learned = float(model.log_smoothness.detach())
    assert float(state["log_smoothness"]) == pytest.approx(learned - 1.0)


@pytest.mark.parametrize("method", ["edpcnn", "unet"])
def test_validation_and_best_pt_use_the_average(tmp_path: Path, tiny_data, method: str) -> None:  # type: ignore[no-untyped-def]
    trainer = Trainer(tiny_config(method, iterations=3, average=0.9), tmp_path / "run",
                      data=tiny_data)
    dice, snapshots = [], {}

    def hook(t, e) -> None:  # type: ignore[no-untyped-def]
        if e["event"] == "validation":  # the average each validation scored
            dice.append(e["dice"])
            state = t.average.unet.state_dict()
            snapshots[e["iteration"]] = {k: v.clone() for k, v in state.items()}

    trainer.add_hook(hook)
    trainer.fit()
    averaged, trained = trainer.average.unet, unet_of(trainer.model)
    assert not all(same(a, b) for a, b in zip(averaged.parameters(), trained.parameters()))
    idx = tiny_data.val
    t = tiny_data.data.to_tensors()
    expected = score(trainer.method, averaged, t["images"][idx], t["masks"][idx],
                     t["centers"][idx], trainer.star).mean_dice
    assert dice[-1] == pytest.approx(expected)
    best = load_checkpoint(tmp_path / "run" / "best.pt")  # the average at its iteration
    prefix = "unet." if method == "edpcnn" else ""
    for name, value in snapshots[best["iteration"]].items():
        assert same(best["model"][prefix + name], value), name
    last = load_checkpoint(tmp_path / "run" / "last.pt")  # last.pt: the trained weights
    prefix = "unet." if method == "edpcnn" else ""
    for name, value in trained.state_dict().items():
        assert same(last["model"][prefix + name], value), name


def test_resume_restores_the_average_exactly(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    straight = tmp_path / "straight"
    Trainer(tiny_config("edpcnn", iterations=4, average=0.9), straight, data=tiny_data).fit()
    split = tmp_path / "split"
    Trainer(tiny_config("edpcnn", iterations=2, average=0.9), split, data=tiny_data).fit()
    Trainer(tiny_config("edpcnn", iterations=4, average=0.9), split, data=tiny_data,
            resume=True).fit()
    a = load_checkpoint(straight / "last.pt")["average"]["unet"]
    b = load_checkpoint(split / "last.pt")["average"]["unet"]
    assert a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def test_a_decay_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"average must be a number in \[0, 1\]; got 1.5"):
        TrainConfig(method="edpcnn", average=1.5)
