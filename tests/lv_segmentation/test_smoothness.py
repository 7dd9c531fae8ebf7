"""The DP's smoothness penalty in lvseg: fixed (``--smoothness``) and learned with the U-Net
(``--learn-smoothness``), through training, the checkpoint, evaluation and old config files."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from diffbypass_stardp import StarDP, radial_difference
from lvseg.checkpoint import load_checkpoint
from lvseg.cli import main
from lvseg.config import TrainConfig
from lvseg.edpcnn import INITIAL_SMOOTHNESS
from lvseg.evaluate import evaluate_run
from lvseg.methods import build_model
from lvseg.runs import load_run
from lvseg.score import score
from lvseg.segment import segment
from lvseg.star import StarConfig
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, one_error_line, same, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_STAR = dict(n_lines=12, n_points=24, radius=24.0)


def _train(tmp_path: Path, name: str, data: Any, **overrides: Any) -> tuple[Trainer, Path]:
    run = tmp_path / name
    trainer = Trainer(tiny_config(**{"iterations": 2, **overrides}), run, data=data)
    trainer.fit()
    return trainer, run


def _same_state(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    for key in ("model", "optimizer", "best_dice"):
        assert same(sa[key], sb[key]), key


def test_smoothness_zero_is_bit_identical_to_a_run_without_it(tmp_path: Path) -> None:
    plain, zero = tmp_path / "plain", tmp_path / "zero"
    args = ["train", "--method", "edpcnn", "--iterations", "2", *TINY_ARGS]
    assert main([*args, "--out", str(plain)]) == 0
    assert main([*args, "--smoothness", "0", "--out", str(zero)]) == 0
    _same_state(plain, zero)
    assert json.loads((zero / "config.json").read_text())["star"]["smoothness"] == 0.0


def test_a_fixed_smoothness_is_used_in_training_and_at_inference(tmp_path: Path,
                                                                  tiny_data: Any) -> None:
    _, zero = _train(tmp_path, "zero", tiny_data)
    _, stiff = _train(tmp_path, "stiff", tiny_data, star=StarConfig(**TINY_STAR, smoothness=2.0))
    a, b = load_checkpoint(zero / "last.pt")["model"], load_checkpoint(stiff / "last.pt")["model"]
    assert not same(a, b)  # the surrogate was fitted to another DP
    run = load_run(stiff)
    assert run.config.star.smoothness == 2.0 and not run.config.learn_smoothness
    # inference reads the run's lambda: on noisy maps (an identity "U-Net") the indices are
    # the DP with lambda = 2, not the unpenalised DP
    maps = torch.randn(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    seg = segment("edpcnn", torch.nn.Identity(), maps, torch.full((4, 2), 32.0), run.config.star)
    stiff_dp, free_dp = StarDP(delta=1, lam=2.0, output="float"), StarDP(delta=1, output="float")
    assert torch.equal(seg.indices, stiff_dp(seg.warped))
    assert not torch.equal(seg.indices, free_dp(seg.warped))
    # the penalised answer has the lower penalised energy (the DP's objective, written here)
    cost = radial_difference(seg.warped.double())
    hard, free = (StarDP(delta=1, lam=lam)(seg.warped) for lam in (2.0, 0.0))

    def energy(v: torch.Tensor) -> torch.Tensor:
        unary = cost.gather(-1, v.unsqueeze(-1)).squeeze(-1).sum(-1)
        return unary + 2.0 * (v - v.roll(-1, dims=-1)).abs().sum(-1)

    assert bool((energy(hard) <= energy(free) + 1e-9).all())
    assert bool((energy(hard) < energy(free) - 1e-9).any())


@pytest.mark.parametrize("method", ["edpcnn", "edpcnn-es"])
def test_a_learned_smoothness_gets_a_gradient_and_moves(tmp_path: Path, tiny_data: Any,
                                                        method: str) -> None:
    config = tiny_config(method, iterations=3, learn_smoothness=True)
    trainer = Trainer(config, tmp_path / "run", data=tiny_data)
    start = float(trainer.model.smoothness.detach())
    assert start == pytest.approx(INITIAL_SMOOTHNESS)
    trainer.step()
    grad = trainer.model.log_smoothness.grad
    assert grad is not None and float(grad) != 0.0 and math.isfinite(float(grad))
    moved = float(trainer.model.smoothness.detach())
    assert moved != start  # the user's Adam stepped it (smoothness_lr)
    # Adam's first step, bias-corrected: lr * g / (|g| + eps), eps = 1e-8 (about lr unless the
    # gradient is as small as eps, as it can be on the tiny data)
    step = config.smoothness_lr * abs(float(grad)) / (abs(float(grad)) + 1e-8)
    assert abs(math.log(moved / start)) == pytest.approx(step, rel=1e-3)
    trainer.iteration += 1
    trainer.fit()
    events = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [e["smoothness"] for e in events if e["event"] == "validation"]
    assert logged and all(v > 0 for v in logged)
    assert logged[-1] == pytest.approx(float(trainer.model.smoothness.detach()))


def test_a_learned_smoothness_starts_at_the_given_value() -> None:
    model = build_model(tiny_config(learn_smoothness=True,
                                    star=StarConfig(**TINY_STAR, smoothness=0.7)))
    assert float(model.smoothness.detach()) == pytest.approx(0.7)
    assert model.bypass.estimator.model.lam_input  # the surrogate conditions on lambda


def test_a_learned_smoothness_round_trips_through_the_checkpoint(tmp_path: Path,
                                                                 tiny_data: Any, capsys) -> None:  # type: ignore[no-untyped-def]
    _, run_dir = _train(tmp_path, "learned", tiny_data, iterations=2, learn_smoothness=True)
    best = load_checkpoint(run_dir / "best.pt")
    learned = float(best["model"]["log_smoothness"].exp())
    assert learned != pytest.approx(INITIAL_SMOOTHNESS, rel=1e-6)
    run = load_run(run_dir)
    assert run.config.star.smoothness == pytest.approx(learned)  # what evaluate/predict use
    result = evaluate_run(run_dir, split="test")
    assert result["smoothness"] == pytest.approx(learned) and result["learned_smoothness"]
    # the same Dice as a star built here with the learned value, on the same weights
    t, idx = tiny_data.data.to_tensors(), tiny_data.test
    star = dataclasses.replace(tiny_config().star, smoothness=learned)
    dice = score("edpcnn", run.unet, t["images"][idx], t["masks"][idx], t["centers"][idx], star,
                 spacing=tiny_data.data.spacing).mean_dice
    assert result["dice"] == pytest.approx(dice, abs=1e-12)
    capsys.readouterr()
    _, again = _train(tmp_path, "again", tiny_data, iterations=2, learn_smoothness=True)
    assert main(["evaluate", str(again), "--split", "test"]) == 0
    assert "learned smoothness lambda" in capsys.readouterr().out


def test_a_config_json_without_the_smoothness_keys_loads_as_before(tiny_runs: dict[str, Path]
                                                                   ) -> None:
    data = json.loads((tiny_runs["edpcnn"] / "config.json").read_text())
    for key in ("learn_smoothness", "smoothness_lr"):
        data.pop(key)
    data["star"].pop("smoothness")
    config = TrainConfig.from_dict(data)
    assert config.star.smoothness == 0.0 and not config.learn_smoothness
    assert config.star == dataclasses.replace(tiny_config().star, smoothness=0.0)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: StarConfig(smoothness=-0.5), "smoothness must be a number >= 0; got -0.5"),
    (lambda: StarConfig(smoothness=float("nan")), "smoothness must be a number >= 0; got nan"),
    (lambda: tiny_config(smoothness_lr=0.0), "smoothness_lr must be a positive number; got 0.0"),
    (lambda: TrainConfig(method="edpcnn", learn_smoothness="yes"),
     "learn_smoothness must be True or False; got 'yes'"),
])  # fmt: skip
def test_bad_smoothness_values_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        make()


def test_learning_the_smoothness_needs_a_method_through_the_dp(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"learn_smoothness needs a method that trains through "
                       r"the DP \(edpcnn, edpcnn-es, edpcnn-softdp\); got method 'unet'"):
        build_model(tiny_config("unet", learn_smoothness=True))
    code = main(["train", "--method", "unet-dp", "--learn-smoothness", *TINY_ARGS,
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "learn_smoothness needs a method" in one_error_line(capsys)
    assert not (tmp_path / "run" / "last.pt").exists()
    with pytest.raises(SystemExit):
        main(["train", "--method", "edpcnn", "--smoothness", "-1", *TINY_ARGS,
              "--out", str(tmp_path / "run2")])
    assert "smoothness must be a number >= 0; got -1.0" in capsys.readouterr().err


def test_a_learned_penalty_enters_the_star_as_its_exponential():
    """``StarConfig.learned``: the one place a learned log-penalty becomes the star's smoothness
    (inference through ``methods.star_of``, validation through ``WeightAverage.star``)."""
    import math

    import torch

    from lvseg.star import StarConfig

    star = StarConfig(n_lines=8, n_points=16, radius=12.0)
    assert star.learned(None) is star
    got = star.learned(torch.tensor(math.log(0.25), requires_grad=True))
    assert got.smoothness == pytest.approx(0.25) and got.n_lines == 8 and star.smoothness == 0.0
