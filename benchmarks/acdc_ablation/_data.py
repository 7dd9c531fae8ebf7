"""The ACDC study's data and label-free evaluations (``acdc_ablation.py``): the thesis split
loaded once, each job's ``TrainConfig``, the jitter study, the baselines and the star's
resolution ceilings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks import _lv_runs as lv
from benchmarks.acdc_ablation._study import CEILING_POOLS, EDGE_BEFORE, VARIANTS, Job, Plan
from lvseg.config import TrainConfig
from lvseg.data import telescopic_subsets
from lvseg.jitter import jitter_centers
from lvseg.methods import build_model, unet_of
from lvseg.metrics import evaluate_batch, summarize
from lvseg.score import score
from lvseg.star import StarConfig
from lvseg.prepare import PreparedSplits, prepare_data

def config_of(job: Job, plan: Plan, data_dir: Path, chosen: dict[str, Any] | None = None
              ) -> TrainConfig:  # fmt: skip
    """The job's TrainConfig: the defaults, except what the variant, the plan and ``chosen``
    (settings chosen on validation, :func:`~benchmarks.acdc_ablation._study.chosen`) set."""
    method, star, knobs = VARIANTS[job.variant]
    knobs = {**knobs, **(chosen or {})}
    stars = {**TrainConfig(method=method).star.as_dict(), **star}
    every = min(plan.val_every[job.variant], job.iterations)
    return TrainConfig(method=method, data="acdc", data_dir=str(data_dir), split="thesis",
                       train_size=job.size, seed=job.seed, split_seed=0,
                       iterations=job.iterations, val_every=every, checkpoint_every=every,
                       star=StarConfig(**stars), **knobs)  # fmt: skip


class Data:
    """The ACDC data with the thesis split, loaded once; the training subset of a size."""

    def __init__(self, data_dir: Path, plan: Plan) -> None:
        cfg = TrainConfig(method="unet", data="acdc", data_dir=str(data_dir), split="thesis",
                          train_size=None)  # fmt: skip
        full = prepare_data(cfg)
        val = full.val[:: plan.val_subset] if plan.val_subset else full.val
        self.full = dataclasses.replace(full, val=val)
        self.tensors = full.data.to_tensors()

    def splits(self, size: int) -> PreparedSplits:
        train = telescopic_subsets(self.full.train, [size], seed=0)[size]  # as prepare_data
        return dataclasses.replace(self.full, train=train,
                                   unlabelled=np.setdiff1d(self.full.train, train))

    def evaluate(self, method: str, unet: Any, star: StarConfig, idx: np.ndarray | None = None,
                 centers: Any = None, per_image: bool = True) -> dict[str, Any]:  # fmt: skip
        """Scores of ``method`` on ``idx`` (default: the validation images)."""
        idx = self.full.val if idx is None else idx
        t = self.tensors
        c = t["centers"][idx] if centers is None else centers
        return lv.evaluation(method, unet, t["images"][idx], t["masks"][idx], c, star,
                             self.full.data.spacing, per_image)  # fmt: skip

    def dice(self, method: str, unet: Any, star: StarConfig, idx: np.ndarray | None = None) -> float:
        """Mean Dice of ``method`` on ``idx`` (default: validation), without surface distances."""
        idx = self.full.val if idx is None else idx
        t = self.tensors
        return score(method, unet, t["images"][idx], t["masks"][idx], t["centers"][idx],
                     star).mean_dice


def jitter(data: Data, unet: Any, config: TrainConfig, plan: Plan) -> dict[str, float]:
    """Validation Dice with the test centres jittered inside the object (Fig. 5.4)."""
    idx, t, out = data.full.val, data.tensors, {}
    for scale in plan.jitters:
        centers = jitter_centers(t["centers"][idx].numpy(), t["radii"][idx].numpy(),
                                 t["masks"][idx].numpy(), scale, np.random.default_rng(1234))
        ev = data.evaluate(config.method, unet, config.star, centers=torch.from_numpy(centers))
        out[f"{scale:g}"] = ev["dice"]
    return out


def jitter_delta(job: Job, data: Data, plan: Plan, work: Path, data_dir: Path,
                 delta: int) -> dict[str, Any] | None:
    """The jitter study of the finished edpcnn run of ``job``'s size and seed with the DP's
    ``delta`` replaced at test (``lvseg evaluate --delta``); ``None`` if that run is not done."""
    from lvseg.checkpoint import load_checkpoint, load_model_state

    trained = Job(job.size, job.seed, "edpcnn", job.iterations)
    best = work / trained.key.replace("/", "_") / "best.pt"
    if not best.is_file():
        return None
    config = config_of(trained, plan, data_dir)
    config = dataclasses.replace(config, star=dataclasses.replace(config.star, delta=delta))
    model = build_model(config)
    load_model_state(model, load_checkpoint(best), best)
    return {"key": job.key, "size": job.size, "seed": job.seed, "variant": job.variant,
            "evaluations": {}, "delta": delta,
            "jitter_dice": jitter(data, unet_of(model).eval(), config, plan)}  # fmt: skip


def baselines(job: Job, data: Data, plan: Plan, data_dir: Path) -> dict[str, Any]:
    """The label-free rows: DP on an untrained U-Net, a disc of the mean radius."""
    config = config_of(Job(job.size, job.seed, "edpcnn", 1), plan, data_dir)
    unet = unet_of(build_model(config))
    evals = {"untrained-dp": data.evaluate("edpcnn", unet, config.star)}
    masks, train = data.tensors["masks"], data.splits(job.size).train
    radius = float(np.mean(np.sqrt(masks[train].sum(dim=(1, 2)).numpy() / np.pi)))
    idx = data.full.val
    centers = data.tensors["centers"][idx]
    ys, xs = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in masks.shape[1:]),
                            indexing="ij")  # fmt: skip
    discs = ((xs - centers[:, :1, None]) ** 2 + (ys - centers[:, 1:, None]) ** 2) <= radius**2
    rows = evaluate_batch(discs, masks[idx], data.full.data.spacing, centers, config.star.radius)
    s = summarize(rows)
    evals["mean-disc"] = {"dice": s["dice_mean"], "dice_std_images": s["dice_std"],
                          "hd_mm": lv.num(s["hd_mean"]), "n_test": s["n"], "radius_px": radius}
    return {"key": job.key, "size": job.size, "seed": job.seed, "variant": "baselines",
            "evaluations": evals}  # fmt: skip


def truth_dice(data: Data, star: StarConfig) -> float:
    """Validation Dice of the star DP on the true masks minus 1/2 (as U-Net+DP reads a
    probability), through an identity "U-Net": what ``star`` can represent."""
    idx, t = data.full.val, data.tensors
    maps = (t["masks"][idx].float() - 0.5)[:, None]
    return score("edpcnn-es", torch.nn.Identity(), maps, t["masks"][idx], t["centers"][idx],
                 star).mean_dice


def ceilings(job: Job, data: Data) -> dict[str, Any]:
    """The star DP on the true validation masks (:func:`truth_dice`), the DP's input pooled as
    ES-lo pools it: the Dice the star representation allows."""
    star = dataclasses.replace(TrainConfig(method="edpcnn-es").star, **EDGE_BEFORE)
    out = {str(pool): truth_dice(data, dataclasses.replace(star, pool=pool))
           for pool in CEILING_POOLS}
    return {"key": job.key, "size": job.size, "seed": job.seed, "variant": "ceilings",
            "evaluations": {}, "ceilings": out}  # fmt: skip
