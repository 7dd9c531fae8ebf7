"""A training that falls to contours at the star's rim is said, not silent: ``score`` counts the
validation images whose DP contour fills the star (``lvseg.star.at_rim``), the validation event
carries the count, and ``lvseg train`` warns once (``lvseg.hooks.RimWarning``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from lvseg.hooks import RimWarning
from lvseg.score import score
from lvseg.star import RIM_FRACTION, StarConfig, at_rim, lines_at_rim, training_fell
from lvseg.volumes import check_rim
from lvseg_testing import tiny_config

STAR = StarConfig(n_lines=12, n_points=24, radius=12.0)
CENTRES = torch.full((3, 2), 15.5)


def _disc_masks() -> torch.Tensor:
    yy, xx = np.mgrid[:32, :32]
    return torch.from_numpy(np.stack([(xx - 15.5) ** 2 + (yy - 15.5) ** 2 < r**2
                                      for r in (4.0, 6.0, 8.0)]))


def test_the_rule_counts_lines_beyond_the_tolerance_and_agrees_with_the_volume_check() -> None:
    rng = np.random.default_rng(0)
    radii = rng.choice([5.0, 61.0, 62.0, 65.0], size=(200, 8))  # 0.95 x 65 = 61.75
    counts = lines_at_rim(radii, 65.0)
    assert (counts == (radii >= 61.75).sum(1)).all()
    assert (at_rim(radii, 65.0) == (counts > RIM_FRACTION * 8)).all()
    for row, flagged in zip(radii, at_rim(radii, 65.0)):  # one rule for both uses
        assert (check_rim(row, 65.0, "s") is not None) == flagged


def test_score_counts_the_images_whose_contour_fills_the_star() -> None:
    masks = _disc_masks()
    good = (masks[:, None].float() - 0.5) * 20  # a perfect U-Net's logits: edges at the discs
    everywhere = torch.full_like(good, 10.0)  # foreground up to the line ends: no edge inside
    half = torch.cat([good[:2], everywhere[2:]])
    assert score("unet-dp", torch.nn.Identity(), good, masks, CENTRES, STAR).at_rim == 0
    assert score("unet-dp", torch.nn.Identity(), everywhere, masks, CENTRES, STAR).at_rim == 3
    assert score("unet-dp", torch.nn.Identity(), half, masks, CENTRES, STAR).at_rim == 1
    assert score("unet", torch.nn.Identity(), good, masks, CENTRES, STAR).at_rim is None  # no DP


def test_a_training_fell_when_more_than_half_of_the_validation_images_are_at_the_rim() -> None:
    for n in range(12):
        for k in range(n + 1):
            assert training_fell(k, n) == (2 * k > n), (k, n)


def _event(at: Any, iteration: int = 50) -> dict[str, Any]:
    return {"event": "validation", "iteration": iteration, "dice": 0.2, "best_dice": 0.91,
            "best_iteration": 25, **({} if at is None else {"at_rim": at})}


def test_the_hook_warns_once_when_most_validation_images_are_at_the_rim() -> None:
    trainer = SimpleNamespace(data=SimpleNamespace(val=np.arange(18)))
    out = io.StringIO()
    hook = RimWarning(out)
    for event in ({"event": "step", "iteration": 1}, _event(None), _event(9), _event(0)):
        hook(trainer, event)  # type: ignore[arg-type]
    assert out.getvalue() == ""  # half (9 of 18) is not most; no DP: nothing to say
    hook(trainer, _event(17, iteration=75))  # type: ignore[arg-type]
    hook(trainer, _event(18, iteration=100))  # type: ignore[arg-type]
    text = out.getvalue()
    assert text.count("lvseg: warning:") == 1, text
    assert text.startswith("lvseg: warning: iteration 75: the DP contour lies at the star's rim "
                           "on 17 of 18 validation images (the training fell; best.pt keeps "
                           "iteration 25, Dice 0.910)")
    assert RimWarning.SEE in text
    readme = Path(__file__).resolve().parents[2] / "benchmarks" / "lv_stability" / "README.md"
    assert "\n## Augmentation on the demo data\n" in readme.read_text(encoding="utf-8")


@pytest.mark.usefixtures("one_thread")
def test_a_dp_run_logs_the_count_at_every_validation(tmp_path: Path, tiny_data: Any) -> None:
    from lvseg.train import Trainer

    for method, has in (("edpcnn", True), ("unet", False)):
        Trainer(tiny_config(method, iterations=2, val_every=1), tmp_path / method,
                data=tiny_data).fit()
        lines = (tmp_path / method / "metrics.jsonl").read_text().splitlines()
        events = [e for e in map(json.loads, lines) if e["event"] == "validation"]
        assert len(events) == 2
        for event in events:
            assert ("at_rim" in event) == has, method
            if has:
                assert isinstance(event["at_rim"], int)
                assert 0 <= event["at_rim"] <= len(tiny_data.val)
