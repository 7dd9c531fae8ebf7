"""Training with the star centres inference will give: a locator run's predicted LV centres.

Without a centre (:mod:`lvseg.centre_free`), the star goes where a locator (a pixel-trained U-Net
run) finds the LV. ``lvseg train --centres locator:RUN_DIR`` lets an end-to-end run (``edpcnn``,
``edpcnn-es``) see such centres while it learns: :func:`predicted_centres` runs the locator once
on every training crop (:func:`lvseg.locate.locate`, each crop a stack of its own) and the
trainer puts the star there for a share ``--centres-share`` of each batch, drawn per image; the
rest keep the jittered true centre (thesis §5.4). A crop where the locator finds no LV keeps its
true centre; a predicted centre outside the LV is moved to the nearest LV pixel (the star must
start inside the object, :func:`lvseg.jitter.onto_object`). With ``--augment`` the predicted
centre goes through the image's flips, rotation, scaling and elastic offsets, as the true centre
does (:func:`lvseg.augment.augment_batch`), and onto the augmented LV (:mod:`lvseg.batch`).

What this does not reproduce: inference re-centres once at the centroid of the DP's own mask,
which needs the run being trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvseg.train_choices import locator_dir
from lvseg.data import SPACING_MM
from lvseg.jitter import onto_object

__all__ = ["predicted_centres", "training_centres"]


def predicted_centres(spec: str, images: np.ndarray, masks: np.ndarray, centers: np.ndarray,
                      *, device: str = "cpu") -> np.ndarray:
    """The locator's LV centre on each training crop, inside the LV.

    Args:
        spec: ``locator:RUN_DIR`` (:func:`lvseg.train_choices.locator_dir`); the run must be
            pixel-trained.
        images: the crops :math:`(K, H, W)` at the training spacing, normalised.
        masks: their LV masks :math:`(K, H, W)` bool.
        centers: their true centres :math:`(K, 2)` ``(x, y)``: kept where no LV is found.
        device: where the locator's U-Net runs.

    Returns:
        float32 :math:`(K, 2)` centres ``(x, y)`` in crop pixels.

    Raises:
        ValueError: if the locator is an end-to-end run (its map does not locate the LV).
        lvseg.rundir.RunDirError: if ``RUN_DIR`` is not a run directory.
    """
    from lvseg.locate import locate
    from lvseg.methods import get_method
    from lvseg.runs import load_run

    folder = locator_dir(spec)
    run = load_run(Path(folder), device=device)
    if get_method(run.config.method).end_to_end:
        raise ValueError(f"centres {spec}: a {run.config.method} run's map is trained through "
                         "the DP and does not locate the LV; give a unet (or unet-dp) run")
    out = np.array(centers, dtype=np.float32, copy=True)
    for k, image in enumerate(np.asarray(images, dtype=np.float32)):
        found = locate(run.config.method, run.unet, image[None], (SPACING_MM, SPACING_MM))
        if found.has_lv[0]:
            out[k] = found.centers[0]
    return onto_object(out, np.asarray(masks, bool))


def training_centres(spec: str, tensors: Mapping[str, Any], train: np.ndarray, *,
                     device: str = "cpu") -> np.ndarray:
    """The star centres of every prepared image :math:`(K, 2)`: the locator's
    (:func:`predicted_centres`) for the training images ``train``, the true ones elsewhere.

    ``tensors`` holds ``images`` :math:`(K, 1, H, W)`, ``masks`` and ``centers``
    (:meth:`lvseg.data.PreparedData.to_tensors`).
    """
    def array(name: str) -> np.ndarray:  # a CPU tensor or an array
        value = tensors[name]
        return value.numpy() if hasattr(value, "numpy") else np.asarray(value)

    out = array("centers").astype(np.float32)  # a copy
    out[train] = predicted_centres(spec, array("images")[train, 0], array("masks")[train],
                                   out[train], device=device)
    return out
