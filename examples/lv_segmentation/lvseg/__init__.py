"""lvseg: left-ventricle segmentation of short-axis cardiac MRI with EDPCNN (diffbypass example).

The modules follow the pipeline, one concept each:

- :mod:`lvseg.data` — loaders (the dataset table), preprocessing, patient splits;
- :mod:`lvseg.options` — dataclass fields with their help; docstrings and the CLI from them;
- :mod:`lvseg.config` — :class:`~lvseg.config.TrainConfig` and the constants;
- :mod:`lvseg.prepare` — data preparation shared by training, evaluation and prediction;
- :mod:`lvseg.models` — the CPU-sized U-Net;
- :mod:`lvseg.star` — the star pattern and the DP settings;
- :mod:`lvseg.edpcnn` — EDPCNN: U-Net → warp → ``Bypass(StarDP, estimator)``;
- :mod:`lvseg.methods` — the method table (estimator, loss, DP or not) and the model factory;
- :mod:`lvseg.jitter` — the star centre jittered inside the object (training, jitter study);
- :mod:`lvseg.segment` — inference for every method;
- :mod:`lvseg.device` — ``--device auto|cpu|cuda``;
- :mod:`lvseg.sampler` — the batch sampler with a resumable state;
- :mod:`lvseg.hooks` — the metrics log and the progress bar;
- :mod:`lvseg.train` — the training loop: hooks, exact resume, safe interruption;
- :mod:`lvseg.interrupt` — Ctrl-C during training: stop after the iteration, checkpoint;
- :mod:`lvseg.checkpoint` — atomic checkpoints, run directories and their lock;
- :mod:`lvseg.metrics` — the evaluation protocol: Dice, HD, HD95 and ASSD inside the star's
  square;
- :mod:`lvseg.surface` — surface distances (HD, HD95, ASSD), checked against MONAI;
- :mod:`lvseg.evaluate` — evaluation of a run;
- :mod:`lvseg.predict` — prediction on new images;
- :mod:`lvseg.figures` — pipeline overlays and training curves;
- :mod:`lvseg.cli` — the ``lvseg`` command.

Submodules are imported on first use (PEP 562), so ``import lvseg`` starts neither torch nor
matplotlib, and ``lvseg.cli.main`` can set ``OMP_WAIT_POLICY`` before torch starts.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "checkpoint",
    "cli",
    "config",
    "data",
    "device",
    "edpcnn",
    "evaluate",
    "figures",
    "hooks",
    "interrupt",
    "jitter",
    "methods",
    "metrics",
    "models",
    "options",
    "predict",
    "prepare",
    "sampler",
    "segment",
    "star",
    "surface",
    "train",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"lvseg.{name}")
    raise AttributeError(f"module 'lvseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
