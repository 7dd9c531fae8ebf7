"""Data preparation shared by training, evaluation and prediction.

Training and evaluation load the configured dataset, preprocess it (resample to
:data:`~lvseg.data.SPACING_MM`, normalise, crop :data:`~lvseg.data.CROP_SIZE` pixels around
the LV) and split it by patient (:func:`prepare_data`); evaluating on every slice of a folder
skips the split (:func:`load_prepared`), so any number of patients works. Prediction on a new
slice applies the same resampling, normalisation and crop around a given centre
(:func:`prepare_image`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lvseg.config import TrainConfig
from lvseg.data import (
    CROP_SIZE,
    DATASETS,
    SCHEMES,
    SPACING_MM,
    LoadReport,
    PreparedData,
    Slice,
    crop_around,
    normalize_intensities,
    preprocess,
    resample,
    telescopic_subsets,
)
from lvseg.data.splits import ALL, SPLITS

__all__ = ["PreparedImage", "PreparedSplits", "crop_grid", "load_prepared", "prepare_data",
           "prepare_image", "training_grid", "training_grids"]


@dataclass(frozen=True)
class PreparedSplits:
    """Preprocessed data and its patient split (``train`` is the telescopic subset;
    ``unlabelled``: the training split's other slices, whose labels semi-supervised training
    (``--unlabelled``, :mod:`lvseg.teacher`) never reads)."""

    data: PreparedData
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    patients: dict[str, tuple[str, ...]]
    report: str
    unlabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def indices(self, split: str) -> np.ndarray:
        """Item indices of a split (:data:`~lvseg.data.splits.SPLITS`) or of
        :data:`~lvseg.data.splits.ALL`."""
        if split == ALL:
            return np.arange(len(self.data))
        if split not in SPLITS:
            raise ValueError(f"split must be {', '.join(SPLITS)} or {ALL}; got {split!r}")
        return getattr(self, split)


def load_prepared(
    config: TrainConfig, *, loaded: tuple[list[Slice], LoadReport] | None = None
) -> tuple[PreparedData, str]:
    """Load and preprocess the configured dataset, without splitting it.

    ``loaded``: the dataset's ``(slices, report)`` if already loaded (:mod:`lvseg.negatives`).

    Returns:
        ``(data, report)``: every usable slice, and what was loaded and skipped.

    Raises:
        FileNotFoundError / ValueError: from the loader (missing or malformed data directory),
            or if no slice is usable.
    """
    dataset = DATASETS[config.data]
    kwargs = {"n": config.synthetic_slices, "seed": config.split_seed} if dataset.generated else {}
    if config.data_dir is not None and not Path(config.data_dir).is_dir():
        raise FileNotFoundError(f"data directory {config.data_dir} does not exist")
    slices, load_report = loaded or dataset.load(config.data_dir, **kwargs)
    data, prep_report = preprocess(slices, spacing=SPACING_MM, size=CROP_SIZE,
                                   offset=config.crop_offset, seed=config.split_seed)
    if len(data) == 0:
        raise ValueError(
            f"no usable slice in the {config.data} data ({load_report}; {prep_report})"
        )
    return data, f"{load_report}; {prep_report}"


def prepare_data(
    config: TrainConfig, *, loaded: tuple[list[Slice], LoadReport] | None = None
) -> PreparedSplits:
    """Load (unless ``loaded``, as :func:`load_prepared`), preprocess and split the configured
    dataset by patient.

    Raises:
        FileNotFoundError / ValueError: as :func:`load_prepared`, from the split (too few
            patients for the shares), or if ``train_size`` exceeds the training split.
    """
    data, report = load_prepared(config, loaded=loaded)
    fractions = config.fractions or DATASETS[config.data].fractions
    split = SCHEMES[config.split](data.patient_ids, fractions, seed=config.split_seed)
    train = split.train
    if config.train_size is not None:
        if config.train_size > len(train):
            raise ValueError(
                f"train_size must be at most the {len(train)} slices of the training split "
                f"(patients {', '.join(split.patients['train'])}); got {config.train_size}"
            )
        train = telescopic_subsets(train, [config.train_size], seed=config.split_seed)[
            config.train_size
        ]
    unlabelled = np.setdiff1d(split.train, train)  # sorted: the order never depends on train
    return PreparedSplits(data, train, split.val, split.test, split.patients, report, unlabelled)


@dataclass(frozen=True)
class PreparedImage:
    """A new slice prepared like the training data, and how to map back to it."""

    crop: np.ndarray
    """Normalised ``CROP_SIZE`` x ``CROP_SIZE`` float32 crop around the centre."""
    center: tuple[float, float]
    """The star centre :math:`(x, y)` in the crop's pixels."""
    origin: tuple[int, int]
    """``(top, left)``: position of the crop's pixel (0, 0) in the resampled slice."""
    factors: tuple[float, float]
    """Resampling factors ``(rows, columns)``: input spacing / training spacing."""

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates :math:`(x, y)` :math:`(K, 2)` → the input slice's pixels."""
        (top, left), (fr, fc) = self.origin, self.factors
        return np.stack([(points[:, 0] + left + 0.5) / fc - 0.5,
                         (points[:, 1] + top + 0.5) / fr - 0.5], axis=1)

    def crop_index(self, n: int, axis: int) -> np.ndarray:
        """The crop row (``axis=0``) or column (1) nearest to each of ``n`` input pixels."""
        factor, start = self.factors[axis], self.origin[axis]
        return np.floor((np.arange(n) + 0.5) * factor - 0.5 - start + 0.5).astype(int)


def training_grid(image: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """``image`` :math:`(H, W)` resampled to the training spacing and normalised as in training:
    what :func:`prepare_image` crops, float32.

    It does not depend on the star's centre, so a slice cropped several times (the finder's and
    the segmenter's crops, :mod:`lvseg.centre_free`) is resampled once (:func:`crop_grid`).
    """
    resampled, _ = resample(image, None, spacing, SPACING_MM)
    return normalize_intensities(resampled).astype(np.float32, copy=False)


def training_grids(images: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """The :func:`training_grid` of each slice of a stack: how the LV finders
    (:func:`lvseg.locate.locate`, :func:`lvseg.anchor.locate_motion`) see whole slices.

    Args:
        images: slices of one size :math:`(K, H, W)`, raw intensities.
        spacing: their pixel size ``(row_mm, col_mm)``.

    Returns:
        float32 :math:`(K, H', W')`, each slice normalised on its own.
    """
    return np.stack([training_grid(image, spacing) for image in images])


def crop_grid(
    grid: np.ndarray,
    center: tuple[float, float],
    spacing: tuple[float, float],
    *,
    size: int = CROP_SIZE,
) -> PreparedImage:
    """Crop a slice's :func:`training_grid` around ``center`` :math:`(x, y)` (input pixels of
    the slice, whose pixel size is ``spacing``): :func:`prepare_image` without the resampling."""
    fr, fc = spacing[0] / SPACING_MM, spacing[1] / SPACING_MM
    cx, cy = (center[0] + 0.5) * fc - 0.5, (center[1] + 0.5) * fr - 0.5  # in the resampled grid
    crop, _, (top, left) = crop_around(grid, (cy, cx), (size, size))
    return PreparedImage(crop.astype(np.float32, copy=False), (cx - left, cy - top), (top, left),
                         (fr, fc))


def prepare_image(
    image: np.ndarray,
    center: tuple[float, float],
    spacing: tuple[float, float],
    *,
    size: int = CROP_SIZE,
) -> PreparedImage:
    """Resample ``image`` to the training spacing, normalise it, and crop around ``center``.

    The same steps as :func:`~lvseg.data.preprocess`, with the crop centred at the given point
    :math:`(x, y)` (input pixels) instead of the LV's centre of mass
    (:func:`crop_grid` of :func:`training_grid`).
    """
    return crop_grid(training_grid(image, spacing), center, spacing, size=size)
