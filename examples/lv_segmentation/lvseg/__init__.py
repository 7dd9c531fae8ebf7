"""lvseg: left-ventricle segmentation of short-axis cardiac MRI with EDPCNN (diffbypass example).

One concept per module:

- :mod:`lvseg.data` — loaders for Sunnybrook (DICOM), ACDC (NIfTI) and synthetic phantoms,
  preprocessing, patient splits and telescopic subsets;
- :mod:`lvseg.metrics` — Dice, Hausdorff distance (HD, HD95) and ASSD inside the star's square
  (the thesis' evaluation protocol), checked against MONAI;
- :mod:`lvseg.models` — the CPU-sized U-Net;
- :mod:`lvseg.pipeline` — EDPCNN on diffbypass: U-Net → star warp → ``Bypass(StarDP, estimator)``;
- :mod:`lvseg.train` — configuration, the training loop with hooks, exact resume;
- :mod:`lvseg.checkpoint` — atomic checkpoints and run directories;
- :mod:`lvseg.evaluate` — evaluation of a run and prediction on new images;
- :mod:`lvseg.figures` — pipeline overlays (image, output map, warped map, DP path, contours);
- :mod:`lvseg.cli` — the ``lvseg`` command.
"""

from __future__ import annotations

from lvseg import checkpoint, cli, data, evaluate, figures, metrics, models, pipeline, train

__all__ = [
    "checkpoint",
    "cli",
    "data",
    "evaluate",
    "figures",
    "metrics",
    "models",
    "pipeline",
    "train",
]

__version__ = "0.1.0"
