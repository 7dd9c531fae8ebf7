"""Negatives: slices without LV in a locator's training data (``lvseg train --negatives``).

A locator (a ``unet`` run, :mod:`lvseg.locate`) looks at every slice of a volume and decides
"no LV" when its foreground blob is small. Trained on the LV slices alone (the thesis protocol:
the ACDC loader drops the slices whose label map has no LV), it never saw a slice where the
answer is "no LV", such as the basal slice at end-systole (atrium, outflow tract) or the slice
below the apex. ACDC's label maps cover every slice, so such a slice is known to hold no LV:
:func:`prepare_training` adds them to the training split as negatives, with an all-background
mask, and the U-Net's pixel loss (:func:`lvseg.methods.pixel_loss`) teaches it background there.

Which and how (:class:`~lvseg.config.TrainConfig` refuses ``negatives`` with a star method, a
dataset whose labels do not cover every slice, and a ``--train-size`` subset):

* the no-LV slices of the ED and ES frames of the *training* patients, every one whose frame has
  a slice with LV; validation and test keep exactly their LV slices, and the training LV slices
  are prepared exactly as without negatives;
* each is resampled and normalised as the LV slices are (:func:`~lvseg.prepare.training_grid`)
  and cropped to :data:`~lvseg.data.CROP_SIZE` around the LV centre of the nearest slice with LV
  in its frame (``lv_centre`` of :func:`~lvseg.data.load_acdc`: where the locator looks at
  inference), moved by up to ``--crop-offset`` times half the crop like the LV crops, with a
  generator of its own seeded by ``split_seed`` (so the LV crops do not change);
* they join the training pool at their natural share (the thesis split's 80 ACDC training
  patients: 80 negatives beside 1436 LV slices): the batches draw from both alike.

Example:
    >>> import tempfile
    >>> from lvseg.volumes import write_phantom_patient
    >>> root = tempfile.mkdtemp()
    >>> for n in range(1, 6):
    ...     _ = write_phantom_patient(root, f"patient{n:03d}", size=48, n_frames=4, seed=n,
    ...                               cine=False)
    >>> config = TrainConfig(method="unet", data="acdc", data_dir=root, split="thesis",
    ...                      train_size=None, negatives=True)
    >>> splits = prepare_training(config)
    >>> empty = ~splits.data.masks[splits.train].any(axis=(1, 2))
    >>> int(empty.sum()) > 0, bool(splits.data.masks[splits.val].any(axis=(1, 2)).all())
    (True, True)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from lvseg.config import TrainConfig
from lvseg.data import CROP_SIZE, DATASETS, SPACING_MM, PreparedData, Slice, crop_around
from lvseg.prepare import PreparedSplits, prepare_data, training_grid

__all__ = ["prepare_negatives", "prepare_training"]

#: The generator stream of the negatives' crop offsets (beside ``split_seed``).
_STREAM = 1


def prepare_training(config: TrainConfig) -> PreparedSplits:
    """The training run's data: :func:`~lvseg.prepare.prepare_data`, and with ``negatives`` the
    training patients' slices without LV added to ``train`` (the module docstring).

    The negatives follow the LV slices in ``data`` (their indices are ``len(LV data)`` on);
    ``val``, ``test``, ``unlabelled`` and the LV slices' arrays are those of ``prepare_data``.

    Raises:
        FileNotFoundError / ValueError: as :func:`~lvseg.prepare.prepare_data`.
    """
    if not config.negatives:
        return prepare_data(config)
    slices, load_report = DATASETS[config.data].load(config.data_dir, negatives=True)
    splits = prepare_data(config, loaded=([s for s in slices if s.has_lv], load_report))
    train_patients = set(splits.patients["train"])
    chosen = [s for s in slices if not s.has_lv and s.patient_id in train_patients]
    negatives = prepare_negatives(chosen, offset=config.crop_offset, seed=config.split_seed)
    first = len(splits.data)
    others = sum(not s.has_lv for s in slices) - len(chosen)
    report = (f"{splits.report}; negatives: {len(negatives)} slices without LV of the "
              f"{len(train_patients)} training patients, in training only (the other "
              f"patients' {others} not used)")
    return replace(splits, data=_concat(splits.data, negatives, first),
                   train=np.concatenate([splits.train, first + np.arange(len(negatives))]),
                   report=report)


def prepare_negatives(
    slices: Sequence[Slice], *, offset: float = 0.0, seed: int = 0, size: int = CROP_SIZE
) -> PreparedData:
    """Crops of slices without LV (empty masks), each around its ``extras["lv_centre"]``.

    Args:
        slices: slices with an empty mask and ``extras["lv_centre"]`` :math:`(x, y)` in their
            pixels (:func:`~lvseg.data.load_acdc` with ``negatives=True``).
        offset: move each crop's centre by up to ``offset`` times half the crop, uniformly per
            slice (as :func:`~lvseg.data.preprocess`).
        seed: seed of those offsets (a stream of its own beside ``preprocess``'s).
        size: the crop side.

    Returns:
        A :class:`~lvseg.data.PreparedData` in input order: ``masks`` all ``False``,
        ``centers`` the LV centre in the crop's pixels (where the nearby LV would be),
        ``radii`` 0, ``slice_indices`` the positions in ``slices``.

    Raises:
        ValueError: naming the slice, if it has an LV or no ``lv_centre``.
    """
    shifts = np.random.default_rng([seed, _STREAM]).uniform(-1.0, 1.0, (len(slices), 2)) * offset
    images = np.zeros((len(slices), 1, size, size), np.float32)
    centers = np.zeros((len(slices), 2), np.float32)
    for k, item in enumerate(slices):
        if item.has_lv or "lv_centre" not in item.extras:
            raise ValueError(f"{item.source}: a negative must have an empty mask and "
                             f"extras['lv_centre']; got {int(item.mask.sum())} LV pixels and "
                             f"extras {sorted(item.extras)}")
        x, y = item.extras["lv_centre"]
        fr, fc = item.spacing[0] / SPACING_MM, item.spacing[1] / SPACING_MM
        cx, cy = (x + 0.5) * fc - 0.5, (y + 0.5) * fr - 0.5  # in the resampled grid
        row, col = cy + shifts[k, 0] * (size // 2), cx + shifts[k, 1] * (size // 2)
        crop, _, (top, left) = crop_around(training_grid(item.image, item.spacing),
                                           (row, col), (size, size))
        images[k, 0], centers[k] = crop, (cx - left, cy - top)
    return PreparedData(
        images=images, masks=np.zeros((len(slices), size, size), bool), centers=centers,
        radii=np.zeros(len(slices), np.float32),
        patient_ids=tuple(s.patient_id for s in slices), sources=tuple(s.source for s in slices),
        slice_indices=np.arange(len(slices), dtype=np.int64), spacing=float(SPACING_MM),
    )


def _concat(lv: PreparedData, negatives: PreparedData, first: int) -> PreparedData:
    """``lv`` then ``negatives`` (whose ``slice_indices`` are shifted by ``first``)."""
    return PreparedData(
        images=np.concatenate([lv.images, negatives.images]),
        masks=np.concatenate([lv.masks, negatives.masks]),
        centers=np.concatenate([lv.centers, negatives.centers]),
        radii=np.concatenate([lv.radii, negatives.radii]),
        patient_ids=lv.patient_ids + negatives.patient_ids,
        sources=lv.sources + negatives.sources,
        slice_indices=np.concatenate([lv.slice_indices, first + negatives.slice_indices]),
        spacing=lv.spacing,
    )
