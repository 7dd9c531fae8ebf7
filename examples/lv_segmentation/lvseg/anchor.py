r"""Finding the LV by its motion: the beating heart anchors crops for a U-Net trained on them.

:func:`locate_motion` is the second finder beside :func:`lvseg.locate.locate` (the locator's map
over the whole slice). It needs the frames of one stack: two or more (ED and ES, or a cine),
:math:`(T, Z, H, W)`.

1. **Anchor** (:func:`motion_map`, no training): every slice is resampled to the training
   spacing and normalised as in training; per pixel the range over the frames
   (:math:`\max_t - \min_t`; for two frames :math:`|ED - ES|`) is averaged over the slices and
   smoothed (Gaussian, :data:`MOTION_SMOOTHING_PX`). Its peak is the anchor: the beating LV moves
   most. The range over all frames is used for a cine because it is the two-frame rule taken to
   every pair of frames at once, and needs no ED/ES labels.
2. **Crops** (:data:`CROPS` times): every slice's
   :data:`~lvseg.data.CROP_SIZE`-pixel square around its current centre (the anchor at first)
   goes through the locator's U-Net; the largest foreground blob (:func:`lvseg.locate.foreground`)
   inside the image is the LV, its centroid the slice's next centre if it is LV-sized
   (``min_area_mm2``) and within :data:`ANCHOR_REACH_MM` of the anchor.
3. **Stack**: with at least 3 LV-sized blobs, a slice whose blob lies more than
   :data:`STACK_REACH_MM` from their median centre is cropped once more at that median; where the
   largest blob of that crop is still that far (the U-Net fired on another structure), the
   median itself becomes the slice's centre, and the blob still decides whether the slice has
   LV and is its fallback mask.

The last crop's blob gives the centre, the "no LV" decision (its area) and the fallback mask of
:class:`lvseg.centre_free.RunSegmenter`, as for the map finder.

**Why.** A U-Net trained as usual sees only crops centred on the LV (``lvseg train
--crop-offset 0``): on a whole slice it fires on other structures, but on a crop near the LV it
finds it. With 10 labelled images, that is the only locator that works (``benchmarks/lv_volumes``:
a locator trained on off-centre crops from 10 images finds the LV on about a third of the
slices). ``lvseg predict/evaluate --find`` chooses the finder
(:data:`lvseg.inference_options.FINDERS`).

Example:
    >>> images = np.zeros((2, 3, 60, 60), np.float32)
    >>> images[0, :, 20:36, 30:46] = 1.0   # ED: the LV
    >>> images[1, :, 24:32, 34:42] = 1.0   # ES: smaller, same place
    >>> x, y = motion_anchor(images, (1.37, 1.37))
    >>> 30 <= x <= 46 and 20 <= y <= 36
    True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from torch import nn

from lvseg.data import CROP_SIZE, SPACING_MM
from lvseg.data.types import positive_sizes
from lvseg.inference_options import MIN_AREA_MM2
from lvseg.locate import Blob, Located, foreground_maps, label_blobs, located_from_grid
from lvseg.prepare import training_grids

__all__ = ["ANCHOR_REACH_MM", "CROPS", "MOTION_SMOOTHING_PX", "STACK_REACH_MM",
           "locate_motion", "locate_motion_on_grid", "motion_anchor", "motion_map"]

#: Standard deviation (training-grid pixels) of the Gaussian that smooths the motion map.
MOTION_SMOOTHING_PX = 5.0
#: A crop's blob further than this (mm) from the anchor does not move the next crop.
ANCHOR_REACH_MM = 40.0
#: How many times each slice is cropped, each time at the previous crop's blob.
CROPS = 2
#: A slice's blob further than this (mm) from the stack's median LV centre is cropped again at
#: the median, and is centred there if its blob is still further. Chosen on the thesis' training
#: patients at 10 labelled images (``benchmarks/lv_volumes/README.md``, "The motion finder's
#: stack step"): 20 mm and the median as the centre against the 30 mm re-crop before (and
#: 15 mm).
STACK_REACH_MM = 20.0


def _frames(images: np.ndarray) -> np.ndarray:
    """``images`` as float32 :math:`(T, Z, H, W)` with :math:`T \\ge 2`, or a ValueError."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim != 4 or min(array.shape) < 1:
        raise ValueError(f"images must be the frames of one stack, (T, Z, H, W); got shape "
                         f"{array.shape}")
    if array.shape[0] < 2:
        raise ValueError(f"finding the LV by its motion needs two frames or more (ED and ES, "
                         f"or a cine); got {array.shape[0]} (use the map finder, "
                         "lvseg.locate.locate, or --find map)")
    if not np.isfinite(array).all():
        raise ValueError("images must be finite; got NaN or infinite pixels")
    return array


def _check_spacing(spacing: tuple[float, float]) -> tuple[float, float]:
    values = positive_sizes(spacing, 2)
    if values is None:
        raise ValueError(f"spacing must be (row_mm, col_mm), two positive numbers; got "
                         f"{spacing!r}")
    return values  # type: ignore[return-value]


def motion_map(grid: np.ndarray) -> np.ndarray:
    """The smoothed motion of normalised slices :math:`(T, Z, H, W)`: the mean over the slices
    of each pixel's range over the frames, Gaussian-smoothed (:data:`MOTION_SMOOTHING_PX`),
    :math:`(H, W)`.

    Example:
        >>> grid = np.zeros((2, 1, 9, 9)); grid[1, 0, 4, 4] = 1.0
        >>> m = motion_map(grid); [int(i) for i in np.unravel_index(int(m.argmax()), m.shape)]
        [4, 4]
    """
    grid = np.asarray(grid, dtype=np.float64)
    return ndimage.gaussian_filter((grid.max(axis=0) - grid.min(axis=0)).mean(axis=0),
                                   MOTION_SMOOTHING_PX)


def _peak(motion: np.ndarray) -> tuple[float, float] | None:
    """``(x, y)`` of the motion map's maximum, ``None`` when nothing moves."""
    if not float(motion.max()) > 0:
        return None
    y, x = np.unravel_index(int(np.argmax(motion)), motion.shape)
    return float(x), float(y)


def motion_anchor(images: np.ndarray, spacing: tuple[float, float]) -> tuple[float, float] | None:
    """The anchor of :func:`locate_motion` in the input's pixels ``(x, y)``, or ``None`` when
    the frames are identical (nothing moves).

    Args:
        images: the frames of one stack, raw intensities, :math:`(T, Z, H, W)`, :math:`T \\ge 2`.
        spacing: the slices' pixel size ``(row_mm, col_mm)``.

    Raises:
        ValueError: if ``images`` is not 4-D with two frames or more, or not finite, or
            ``spacing`` is not two positive numbers.
    """
    frames, spacing = _frames(images), _check_spacing(spacing)
    n_t, n_z, h, w = frames.shape
    grid = training_grids(frames.reshape(-1, h, w), spacing)
    peak = _peak(motion_map(grid.reshape(n_t, n_z, *grid.shape[-2:])))
    if peak is None:
        return None
    fr, fc = spacing[0] / SPACING_MM, spacing[1] / SPACING_MM
    return (peak[0] + 0.5) / fc - 0.5, (peak[1] + 0.5) / fr - 0.5


def _crop_blobs(unet: nn.Module, grid: np.ndarray, xs: np.ndarray, ys: np.ndarray
                ) -> list[tuple[float, float, int, np.ndarray | None]]:
    """Per slice of ``grid`` :math:`(K, H, W)`: the largest foreground blob of the U-Net's map of
    the crop centred at ``(xs[k], ys[k])``, inside the image (the padding is not LV), as
    ``(x, y, pixels, mask on the grid)``; ``(nan, nan, 0, None)`` without one."""
    size, half = CROP_SIZE, CROP_SIZE // 2
    k, height, width = grid.shape
    crops, origins = np.empty((k, size, size), np.float32), []
    for i, (image, x, y) in enumerate(zip(grid, xs, ys)):
        x0, y0 = int(round(float(x))) - half, int(round(float(y))) - half
        padded = np.pad(image, size, constant_values=float(image.min()))
        crops[i] = padded[y0 + size:y0 + 2 * size, x0 + size:x0 + 2 * size]
        origins.append((x0, y0))
    found: list[tuple[float, float, int, np.ndarray | None]] = []
    for fg, (x0, y0) in zip(foreground_maps(unet, crops), origins):
        top, left = max(y0, 0), max(x0, 0)  # the crop's part inside the image
        bottom, right = min(y0 + size, height), min(x0 + size, width)
        blobs: list[Blob] = []
        if top < bottom and left < right:
            labels, blobs = label_blobs(fg[top - y0:bottom - y0, left - x0:right - x0], (top, left))
        if not blobs:
            found.append((math.nan, math.nan, 0, None))
        else:
            x, y, n, label = blobs[0]
            mask = np.zeros((height, width), bool)
            mask[top:bottom, left:right] = labels == label
            found.append((x, y, n, mask))
    return found


def locate_motion(unet: nn.Module, images: np.ndarray, spacing: tuple[float, float], *,
                  min_area_mm2: float = MIN_AREA_MM2) -> Located | None:
    """Find the LV in every slice of a stack's frames by its motion (module docstring).

    Args:
        unet: the locator's U-Net, pixel-trained (a logit; best trained on LV-centred crops).
        images: the frames of one stack, raw intensities, :math:`(T, Z, H, W)`, :math:`T \\ge 2`.
        spacing: the slices' pixel size ``(row_mm, col_mm)``.
        min_area_mm2: smallest blob that counts as an LV.

    Returns:
        :class:`~lvseg.locate.Located` for the :math:`T \\cdot Z` slices in ``(t, z)`` order
        (``z`` fastest), centres in the input's pixels; ``None`` when the frames are identical
        (no motion: use :func:`lvseg.locate.locate`).

    Raises:
        ValueError: as :func:`motion_anchor`.
    """
    frames, spacing = _frames(images), _check_spacing(spacing)
    n_t, n_z, h, w = frames.shape
    grid = training_grids(frames.reshape(-1, h, w), spacing)
    return locate_motion_on_grid(unet, grid.reshape(n_t, n_z, *grid.shape[-2:]), spacing,
                                 (h, w), min_area_mm2)


def locate_motion_on_grid(unet: nn.Module, frames: np.ndarray, spacing: tuple[float, float],
                          shape: tuple[int, int], min_area_mm2: float) -> Located | None:
    """:func:`locate_motion` on frames already on the training grid: a caller that crops the
    slices afterwards (:mod:`lvseg.centre_free`) resamples each once.

    Args:
        unet: the locator's U-Net, pixel-trained.
        frames: the stack's :func:`lvseg.prepare.training_grids`, :math:`(T, Z, H', W')`.
        spacing: the input slices' pixel size ``(row_mm, col_mm)``.
        shape: the input slices' ``(H, W)``.
        min_area_mm2: smallest blob that counts as an LV.

    Returns:
        As :func:`locate_motion`.
    """
    grid = frames.reshape(-1, *frames.shape[-2:])
    anchor = _peak(motion_map(frames))
    if anchor is None:
        return None
    ax, ay = anchor
    min_px, reach = min_area_mm2 / SPACING_MM**2, ANCHOR_REACH_MM / SPACING_MM
    xs, ys = np.full(len(grid), ax), np.full(len(grid), ay)
    for _ in range(CROPS):
        found = _crop_blobs(unet, grid, xs, ys)
        for i, (x, y, n, _) in enumerate(found):
            if n >= min_px and math.hypot(x - ax, y - ay) <= reach:
                xs[i], ys[i] = x, y
    lv = np.array([(x, y) for x, y, n, _ in found if n >= min_px])
    if len(lv) >= 3:  # one stack: a slice far from the median LV is cropped there once more
        mx, my = np.median(lv, axis=0)
        jump = STACK_REACH_MM / SPACING_MM
        far = [i for i, (x, y, _, _) in enumerate(found) if math.hypot(x - mx, y - my) > jump]
        if far:
            again = _crop_blobs(unet, grid[far], np.full(len(far), mx), np.full(len(far), my))
            for i, (x, y, n, mask) in zip(far, again):
                still_far = n > 0 and math.hypot(x - mx, y - my) > jump
                found[i] = (float(mx), float(my), n, mask) if still_far else (x, y, n, mask)
    return located_from_grid(np.array([(x, y) for x, y, _, _ in found]),
                             np.array([n for _, _, n, _ in found]), [m for *_, m in found],
                             spacing, shape, min_area_mm2)
