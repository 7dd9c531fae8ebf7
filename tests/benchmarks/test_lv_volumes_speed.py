"""benchmarks/lv_volumes/speed.py: the stage table adds up, and names the stages it should."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks.lv_volumes.speed import StageClock, stage_times, write_cine
from lvseg.centre_free import RunSegmenter
from lvseg.config import TrainConfig
from lvseg.runs import LoadedRun


class Bright(torch.nn.Module):
    """Logit > 0 on the brightest 15 % of each input's intensity range."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x.amax(dim=(-2, -1), keepdim=True), x.amin(dim=(-2, -1), keepdim=True)
        return x - (hi - 0.15 * (hi - lo))


def test_nested_stages_are_charged_exclusively() -> None:
    clock = StageClock()
    clock.push("outer")
    first = clock.mark[0]
    time.sleep(0.02)
    clock.push("inner")
    time.sleep(0.03)
    clock.pop()
    clock.pop()
    assert clock.wall["inner"] >= 0.03 and 0.02 <= clock.wall["outer"] < clock.wall["inner"] + 0.02
    assert abs(sum(clock.wall.values()) - (clock.mark[0] - first)) < 1e-9


def test_the_stages_of_a_cine_add_up_to_its_time(tmp_path: Path) -> None:
    cine = write_cine(tmp_path, 3)
    run = LoadedRun(TrainConfig(method="unet-dp"), Bright(), "oracle", 0)
    result = stage_times(RunSegmenter(run, find="motion"), cine, tmp_path / "out")
    stages = result["stages"]
    for name in ("read", "resample, normalise", "U-Net (finder)", "U-Net (segmentation)",
                 "segmentation (DP, masks)", "write NIfTI", "montage PNG"):
        assert stages[name]["wall_s"] > 0, name
    assert result["slices"] == 30
    assert result["n_lines"] == 50  # a 25-line run segments volumes with 50 (lvseg's default)
    total = sum(s["wall_s"] for s in stages.values())
    assert abs(total - result["wall_s"]) < 0.01 * result["wall_s"] + 1e-3
    assert (tmp_path / "out" / "cine_lv.nii.gz").is_file()
