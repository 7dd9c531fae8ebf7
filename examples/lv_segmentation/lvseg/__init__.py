"""lvseg: left-ventricle segmentation of short-axis cardiac MRI with EDPCNN (diffbypass example).

One concept per module, on floors: a module imports only from its own floor and the floors
below it (``tests/lv_segmentation/test_layers.py`` checks it; ``docs/architecture.md`` draws it).
From the ground up:

- foundations: :mod:`lvseg.options` (dataclass fields with their help; docstrings and the CLI
  from them), :mod:`lvseg.data` (loaders and the dataset table, preprocessing, patient splits
  and their names), :mod:`lvseg.metrics` and :mod:`lvseg.surface` (Dice, HD, HD95 and ASSD
  inside the star's square, checked against MONAI), :mod:`lvseg.rundir` (run directories, their
  lock, atomic writes), :mod:`lvseg.checkpoint` (saving, safe loading and checking checkpoints),
  :mod:`lvseg.device` (``--device``), :mod:`lvseg.distributed` (training under torchrun:
  ranks, shards, DDP), :mod:`lvseg.sampler` (the resumable batch sampler),
  :mod:`lvseg.interrupt` (Ctrl-C during training), :mod:`lvseg.jitter` (the star centre
  jittered inside the object), :mod:`lvseg.augment` (training data augmentation),
  :mod:`lvseg.inference_options` (the options of ``evaluate`` and ``predict``) and
  :mod:`lvseg.train_choices` (what ``train``'s options choose from: each method's defaults, the
  ``--augment`` presets, ...), torch-free, so that ``--help`` starts no torch;
- :mod:`lvseg.star` — the star pattern and the DP settings; :mod:`lvseg.star_dp` — the DP on the
  star, from the ``stardp`` plugin (and pooled for ES-lo);
- :mod:`lvseg.models` — the CPU-sized U-Net; :mod:`lvseg.edpcnn` — EDPCNN: U-Net → warp →
  ``Bypass(StarDP, estimator)``; :mod:`lvseg.averaging` — an EMA of a model's weights
  (``--average`` and the mean teacher);
- :mod:`lvseg.methods` — the method table: estimator, DP output, loss, what is logged, DP at
  inference, defaults; the model factory; :mod:`lvseg.teacher` — semi-supervised training
  (``--unlabelled``): the EMA teacher and the unlabelled batches;
- :mod:`lvseg.config` — :class:`~lvseg.config.TrainConfig` (a run's ``config.json``);
- :mod:`lvseg.prepare` — data preparation shared by training, evaluation and prediction;
  :mod:`lvseg.images` — reading the DICOM, NIfTI and ``.npy`` slices ``lvseg predict`` segments;
  :mod:`lvseg.negatives` — a locator's training slices without LV (``--negatives``);
- :mod:`lvseg.segment` — inference for every method; :mod:`lvseg.score` — segment, then score
  (training's validation, the evaluation and the benchmarks); :mod:`lvseg.locate` — finding
  the LV (the star's centre, or no LV) without ground truth on a U-Net map;
  :mod:`lvseg.anchor` — finding it by the motion between frames; :mod:`lvseg.volumes` — whole
  volumes: NIfTI/DICOM cines, ED/ES, LV volumes and EF, the challenge's 3-D protocol,
  NIfTI/montage/JSON/CSV outputs;
- :mod:`lvseg.runs` — open a run directory for training, load a trained run;
  :mod:`lvseg.hooks` — the metrics log and the progress bar; :mod:`lvseg.figures` — overlays and
  training curves;
- :mod:`lvseg.train` (the training loop: hooks, exact resume, safe interruption) and
  :mod:`lvseg.train_state` (what ``last.pt`` and ``best.pt`` hold, and resuming from them),
  :mod:`lvseg.evaluate` (evaluation of a run) and :mod:`lvseg.predict` (prediction on new
  images);
  :mod:`lvseg.batch` — a training iteration's batch (sampled, augmented, its stars drawn, this
  rank's share);
  :mod:`lvseg.train_centres` — training stars at a locator run's centres (``--centres``);
  :mod:`lvseg.centre_free` — a trained run as the centre-free segmenter of whole volumes;
- :mod:`lvseg.cli` — the ``lvseg`` command; :mod:`lvseg.cli_evaluate` — its ``evaluate`` runner.

Submodules are imported on first use (PEP 562), so ``import lvseg`` starts neither torch nor
matplotlib, and ``lvseg.cli.main`` can set ``OMP_WAIT_POLICY`` before torch starts.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "anchor",
    "augment",
    "averaging",
    "batch",
    "centre_free",
    "checkpoint",
    "cli",
    "cli_evaluate",
    "config",
    "data",
    "device",
    "distributed",
    "edpcnn",
    "evaluate",
    "figures",
    "hooks",
    "images",
    "inference_options",
    "interrupt",
    "jitter",
    "locate",
    "methods",
    "metrics",
    "models",
    "negatives",
    "options",
    "predict",
    "prepare",
    "rundir",
    "runs",
    "sampler",
    "score",
    "segment",
    "star",
    "star_dp",
    "surface",
    "teacher",
    "train",
    "train_centres",
    "train_choices",
    "train_state",
    "volumes",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"lvseg.{name}")
    raise AttributeError(f"module 'lvseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
