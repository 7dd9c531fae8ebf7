"""``edpcnn-softdp``: the U-Net trained through the relaxed DP (``soft_dp``) instead of the bypass.

Its gradient is checked against brute-force enumeration of every feasible contour (the Gibbs
distribution written out, differentiated by autograd); the soft DP's own exactness and its
zero-temperature limit (the hard DP) are tested in ``tests/stardp/test_soft_dp.py``.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from diffbypass_stardp import radial_difference
from lvseg.cli import build_parser, main
from lvseg.config import TrainConfig
from lvseg.edpcnn import EDPCNN
from lvseg.methods import build_model, get_method
from lvseg.star import StarConfig
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, one_error_line, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


class _Map(nn.Module):
    """A "U-Net" whose output map is its parameter (so the gradient is the map's)."""

    def __init__(self, maps: Tensor) -> None:
        super().__init__()
        self.maps = nn.Parameter(maps)

    def forward(self, images: Tensor) -> Tensor:
        return self.maps


def _brute_loss(warped: Tensor, truth: Tensor, delta: int, tau: float, lam: Tensor) -> Tensor:
    """Mean over lines of -log p(v_n = truth_n), p(v) ∝ exp(-E(v)/tau) over every closed
    contour with steps <= delta: the Gibbs distribution enumerated, no DP."""
    cost = radial_difference(warped)
    b, n, m = cost.shape
    contours = torch.tensor([v for v in itertools.product(range(m), repeat=n)
                             if all(abs(v[i] - v[(i + 1) % n]) <= delta for i in range(n))])
    steps = (contours - contours.roll(-1, dims=1)).abs().sum(1).to(cost.dtype)  # (V,)
    lines = torch.arange(n)
    total = []
    for k in range(b):
        energy = cost[k][lines, contours].sum(1) + lam * steps  # (V,)
        log_p = torch.log_softmax(-energy / tau, dim=0)
        for line in range(n):  # log p(v_line = truth) = logsumexp over the contours with it
            hit = contours[:, line] == truth[k, line]
            total.append(-torch.logsumexp(log_p[hit], dim=0))
    return torch.stack(total).mean()


@pytest.mark.parametrize("learn", [False, True])
def test_step_gradient_is_the_relaxed_dp_gradient(learn: bool) -> None:
    """The method's loss and its gradient (to the U-Net's map and a learned smoothness penalty)
    equal those of the enumerated Gibbs distribution."""
    torch.manual_seed(0)
    star = StarConfig(n_lines=5, n_points=5, radius=4.0, delta=1, smoothness=0.3)
    maps = torch.randn(2, 1, 12, 12, dtype=torch.float64)
    masks = torch.zeros(2, 12, 12, dtype=torch.bool)
    masks[:, 4:9, 3:8] = True
    centers, angles = torch.tensor([[6.0, 6.0], [5.5, 6.5]]), torch.tensor([0.1, -0.2])
    model = EDPCNN(_Map(maps), star, None, learn_smoothness=learn, temperature=0.7)
    assert model.bypass is None
    params = [model.unet.maps] + ([model.log_smoothness] if learn else [])
    loss = get_method("edpcnn-softdp").loss(model, maps, masks, centers, angles)
    grads = torch.autograd.grad(loss, params)

    out = model(maps, centers, angles)
    lam = model.smoothness if learn else torch.tensor(star.smoothness, dtype=torch.float64)
    ref = _brute_loss(out.warped, model.true_indices(masks, out.points), 1, 0.7, lam)
    ref_grads = torch.autograd.grad(ref, params)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-12)
    for got, want in zip(grads, ref_grads):
        assert float(want.abs().max()) > 1e-3  # a gradient that can fail the comparison
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def test_trains_a_few_iterations_without_the_bypass(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    config = tiny_config("edpcnn-softdp", iterations=3, learn_smoothness=True)
    trainer = Trainer(config, tmp_path / "run", data=tiny_data)
    assert trainer.model.bypass is None and trainer.model.temperature == 3.0
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    summary = trainer.fit()
    assert summary["iteration"] == 3 and math.isfinite(summary["best_dice"])
    after = trainer.model.state_dict()
    assert before.keys() == after.keys()
    assert not torch.equal(before["log_smoothness"], after["log_smoothness"])  # learned too
    assert not torch.equal(before["unet.head.weight"], after["unet.head.weight"])
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["method"] == "edpcnn-softdp" and stored["temperature"] == 3.0


def test_temperature_default_and_other_methods() -> None:
    assert tiny_config("edpcnn-softdp").temperature == get_method("edpcnn-softdp").temperature
    assert tiny_config("edpcnn-softdp", temperature=0.25).temperature == 0.25
    assert build_model(tiny_config("edpcnn-softdp", temperature=0.25)).temperature == 0.25
    assert tiny_config("edpcnn").temperature is None
    # a config.json written before the option existed still loads
    old = {k: v for k, v in tiny_config("edpcnn").to_dict().items() if k != "temperature"}
    assert TrainConfig.from_dict(old).temperature is None
    with pytest.raises(ValueError, match=r"temperature \(--temperature\) is for the methods "
                       r"trained through the relaxed DP \(edpcnn-softdp\); got method "
                       r"'edpcnn': drop --temperature"):
        tiny_config("edpcnn", temperature=0.5)
    with pytest.raises(ValueError, match=r"star.pool > 1 \(ES-lo\) is for the ES estimator"):
        build_model(tiny_config("edpcnn-softdp", star=StarConfig(n_lines=12, n_points=24,
                                                                 radius=24.0, pool=2)))


@pytest.mark.parametrize("bad", [0, -1.0, 1e-4, math.nan])
def test_a_bad_temperature_names_the_option(bad: float, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=rf"temperature must be a number >= 0.001 or None; "
                       rf"got {bad!r}"):
        tiny_config("edpcnn-softdp", temperature=bad)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--method", "edpcnn-softdp", "--temperature",
                                   str(bad), "--out", "run"])
    assert "argument --temperature: temperature must be a number >= 0.001" in capsys.readouterr().err
    with pytest.raises(ValueError, match="temperature must be a positive number; got 0"):
        EDPCNN(_Map(torch.zeros(1, 1, 8, 8)), StarConfig(n_lines=4, n_points=4, radius=3.0),
               None, temperature=0)


def test_cli_lists_the_method_and_refuses_the_option_elsewhere(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    # argparse wraps after a hyphen ("edpcnn-" then "softdp" on the next line): join those too
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")
    assert "edpcnn-softdp: U-Net trained end to end through the relaxed DP" in text
    assert "--temperature TAU temperature of the relaxed DP" in text
    argv = ["train", "--method", "edpcnn", "--temperature", "0.5", *TINY_ARGS,
            "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "drop --temperature" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()
