"""benchmarks/lv_volumes/anchor.py: the locator rules on an ACDC-layout phantom patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmarks.lv_volumes.anchor import CROP, _crop, _mode, patient_choices
from lvseg.data import SPACING_MM
from lvseg.volumes import write_phantom_patient


class Bright(torch.nn.Module):
    """"Foreground" where the normalised image is bright (the phantom's blood pool)."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - 1.0


def test_crop_puts_the_point_at_the_crop_centre_and_reports_its_origin() -> None:
    image = np.zeros((60, 90), np.float32)
    image[20, 70] = 5.0
    crop, x0, y0 = _crop(image, 70.0, 20.0)
    assert crop.shape == (CROP, CROP)
    assert crop[CROP // 2, CROP // 2] == 5.0
    assert (x0 + CROP // 2, y0 + CROP // 2) == (70, 20)


def test_mode_picks_the_blob_seen_on_most_slices_not_the_largest() -> None:
    lv, big = (10.0, 10.0, 50, 1), (80.0, 80.0, 500, 2)
    blobs = [[big, lv], [big, lv], [lv], [lv], [(12.0, 11.0, 40, 1)]]
    chosen = _mode(blobs, min_px=20, jump=5.0)
    assert [c[:2] for c in chosen] == [(10.0, 10.0)] * 4 + [(12.0, 11.0)]


def test_the_motion_rules_find_the_phantom_lv(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient905", size=64, n_frames=4)
    chosen, truth = patient_choices(folder, Bright(), Bright(), steps=2)
    assert set(chosen) >= {"largest", "stack", "mode", "oracle", "motion", "motion+disc",
                           "motion+centred", "motion+centred+stack"}
    def errors(rule: str) -> list[float]:
        return [float(np.hypot(x - t[0], y - t[1]) * SPACING_MM)
                for (x, y, *_), t in zip(chosen[rule], truth) if t is not None]

    assert max(errors("oracle")) < 6.0  # the blob nearest the truth: never worse than a rule
    for rule in chosen:
        assert all(o <= e + 1e-9 for o, e in zip(errors("oracle"), errors(rule))), rule
    for rule in ("motion", "motion+disc", "motion+centred", "motion+centred+stack"):
        # every LV slice gets an LV-sized blob, near the LV on most (the phantom's apex has a
        # larger bright neighbour 26 mm away, inside the 30 mm limit)
        assert all(n >= 100 / SPACING_MM**2 for (_, _, n, *_), t in zip(chosen[rule], truth)
                   if t is not None), rule
        assert np.median(errors(rule)) < 5.0, (rule, errors(rule))

