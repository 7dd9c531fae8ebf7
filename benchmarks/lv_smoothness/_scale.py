"""The scale of the smoothness penalty on ACDC: where does lambda start to change the contours?

A short edpcnn run (10 training images, lambda = 0, 150 iterations: the default when it ran, 500
since issue #20, :data:`PROBE_ITERATIONS`) is trained once;
on its best checkpoint the DP's unary costs of the validation images are summarised (the
edge strength: the cost at the chosen index of each line; the spread of the costs of a line) and
the contours are recomputed for a grid of fixed lambda: the share of line indices that move and
the validation Dice. Writes ``results/lv_smoothness_scale.json``. Minutes; run once, by
``python -m benchmarks.lv_smoothness --scale``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import _harness as h

#: The lambda grid of the sweep.
GRID = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: The probe run's iterations: edpcnn's default when the probe ran (pinned, so that a missing
#: probe is trained again as the results describe it).
PROBE_ITERATIONS = 150


def scale(data_dir: Path, work: Path, out: Path) -> dict[str, Any]:
    """Train (or reuse) the probe run and sweep lambda; returns and writes the summary."""
    from diffbypass_stardp import radial_difference
    from lvseg.checkpoint import load_checkpoint, load_model_state
    from lvseg.config import TrainConfig
    from lvseg.data import telescopic_subsets
    from lvseg.methods import build_model, unet_of
    from lvseg.prepare import prepare_data
    from lvseg.score import score
    from lvseg.train import Trainer

    config = TrainConfig(method="edpcnn", data="acdc", data_dir=str(data_dir), split="thesis",
                         train_size=10, iterations=PROBE_ITERATIONS, val_every=50,
                         checkpoint_every=50)
    full = prepare_data(dataclasses.replace(config, train_size=None))
    splits = dataclasses.replace(full, train=telescopic_subsets(full.train, [10], seed=0)[10])
    run = work / "scale_probe"
    if not (run / "best.pt").is_file():
        if run.exists():
            import shutil

            shutil.rmtree(run)
        Trainer(config, run, data=splits).fit()
    model = build_model(config)
    load_model_state(model, load_checkpoint(run / "best.pt"), run / "best.pt")
    unet = unet_of(model).eval()
    t = full.data.to_tensors()
    idx = full.val
    images, masks, centers = t["images"][idx], t["masks"][idx], t["centers"][idx]
    rows, base = [], None
    for lam in GRID:
        star = dataclasses.replace(config.star, smoothness=lam)
        s = score("edpcnn", unet, images, masks, centers, star)
        ind = s.segmentation.indices
        if base is None:
            base = ind
            cost = radial_difference(s.segmentation.warped)  # (B, N, M)
        moved = float((ind - base).abs().gt(0.5).float().mean())
        rows.append({"lam": lam, "dice": s.mean_dice, "share_of_line_indices_moved": moved})
    picked = cost.min(dim=-1).values  # the strongest edge of each line
    spread = cost.amax(dim=-1) - cost.amin(dim=-1)
    q = lambda x: {f"q{p}": float(np.percentile(x.flatten().numpy(), p)) for p in (10, 50, 90)}  # noqa: E731
    summary = {"probe_run": {"method": "edpcnn", "train_size": 10, "seed": 0,
                             "iterations": config.iterations, "lam": 0.0},
               "n_validation_images": len(idx), "strongest_edge_per_line": q(-picked),
               "cost_range_per_line": q(spread), "sweep": rows}  # fmt: skip
    summary["method"] = " ".join(__doc__.split())  # the module docstring says how
    summary["table"] = {
        "columns": ["lambda at inference", "validation Dice", "share of line indices moved"],
        "rows": [[r["lam"], round(r["dice"], 4), round(r["share_of_line_indices_moved"], 4)]
                 for r in summary["sweep"]],
    }
    h.atomic_write(out / "lv_smoothness_scale.json", json.dumps(summary, indent=2) + "\n")
    return summary
