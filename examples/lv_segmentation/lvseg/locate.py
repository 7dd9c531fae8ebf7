r"""Finding the LV without ground truth: where the star goes, and whether a slice has LV at all.

:func:`locate` reads the run's own U-Net output map over the whole slice: the slice is resampled
to the training spacing and normalised as in training (:mod:`lvseg.prepare`), padded to a
multiple of :math:`2^{depth}` and run through the U-Net (it is fully convolutional), and its
foreground is thresholded (:func:`foreground`). The largest 8-connected blob is the LV: its
centroid is the star's centre, its area decides "no LV" (below ``min_area_mm2``) and its mask
(:attr:`Located.masks`, in the input's pixels) is what the segmenter falls back to when a DP
contour is implausible (:mod:`lvseg.centre_free`). The slices
are one stack (a frame of a volume): a slice whose blob lies more than :data:`MAX_JUMP_MM` from
the stack's median LV centre takes its largest blob near that median instead, or none. The trained
segmenter (:class:`lvseg.centre_free.RunSegmenter`) then re-centres once at the centroid of
the DP's own mask.

The threshold depends on how the U-Net was trained (:attr:`lvseg.methods.Method.end_to_end`): a
pixel-trained map is a logit, read at probability 1/2; an end-to-end map (EDPCNN) is what the DP
saw, which treats the point beyond the star as 0, so its LV is where the map is positive. How
well each finds the LV on ACDC is measured in ``benchmarks/lv_volumes``.

Example:
    >>> import torch
    >>> class Bright(torch.nn.Module):  # "foreground" where the image is bright
    ...     depth = 0
    ...     def forward(self, x): return x - 1.0
    >>> image = np.zeros((40, 50), np.float32); image[10:20, 30:40] = 1.0
    >>> found = locate("unet", Bright(), image[None], (1.37, 1.37), min_area_mm2=10.0)
    >>> [round(v) for v in found.centers[0]], bool(found.has_lv[0])
    ([34, 14], True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from lvseg.data import SPACING_MM
from lvseg.methods import Method
from lvseg.inference_options import MIN_AREA_MM2
from lvseg.prepare import training_grids

__all__ = ["BATCH_SIZE", "MAX_JUMP_MM", "NO_BLOB", "Blob", "Located", "consistent_blobs",
           "foreground", "foreground_maps", "label_blobs", "locate", "locate_on_grid",
           "located_from_grid"]

#: In a stack of slices, a slice's LV further than this (mm) from the median LV centre of the
#: stack is a false find: the largest blob near the median is taken instead, or none.
MAX_JUMP_MM = 30.0
#: Crops or slices per U-Net call at inference (the finders' and :mod:`lvseg.centre_free`'s):
#: on CPUs, larger batches were slower per crop (``benchmarks/lv_volumes``, speed).
BATCH_SIZE = 8


class Located(NamedTuple):
    """What :func:`locate` found in :math:`K` slices (input pixel coordinates)."""

    centers: np.ndarray
    """Centroid :math:`(x, y)` of the LV blob per slice, float64 :math:`(K, 2)`; NaN without one."""
    has_lv: np.ndarray
    """Whether the blob is at least ``min_area_mm2``, bool :math:`(K,)`."""
    areas_mm2: np.ndarray
    """Area of the chosen blob (mm²), :math:`(K,)`; 0 without one."""
    masks: np.ndarray
    """The chosen blob per slice in the input's pixels (nearest resampled pixel), bool
    :math:`(K, H, W)`; empty without one."""


def foreground(maps: torch.Tensor) -> torch.Tensor:
    """The U-Net's foreground: map > 0, i.e. probability > 1/2 for a pixel-trained logit and
    the DP's inside for an end-to-end map (the module docstring says why)."""
    return maps > 0


#: A blob of :func:`label_blobs`: centroid ``x, y`` (pixels), size in pixels, label.
Blob = tuple[float, float, int, int]


def label_blobs(mask: np.ndarray, origin: tuple[int, int] = (0, 0)
                ) -> tuple[np.ndarray, list[Blob]]:
    """The 8-connected blobs of a foreground mask, largest first.

    The centroids are ``scipy.ndimage.center_of_mass``'s, computed the same way (weighted
    ``bincount`` in raster order, whose sums do not change when empty pixels are left out), so
    a window gives the same numbers as the whole image, faster.

    Args:
        mask: bool :math:`(H, W)`, the window at ``origin`` of a larger image that is empty
            outside it.
        origin: ``(top, left)`` of the window in that image.

    Returns:
        ``(labels, blobs)``: the blobs' labels :math:`(H, W)` (0 outside them) and a
        :data:`Blob` ``(x, y, pixels, label)`` per blob, ``x, y`` in the larger image's
        pixels; no blob for an empty mask.
    """
    from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return labels, []
    flat, weight = labels.ravel(), np.asarray(mask, bool)
    sizes = np.bincount(flat)[1:]
    total = np.bincount(flat, weights=weight.ravel())[1:]
    rows = np.arange(origin[0], origin[0] + mask.shape[0]).astype(float)[:, None]
    cols = np.arange(origin[1], origin[1] + mask.shape[1]).astype(float)[None, :]
    ys = np.bincount(flat, weights=(weight * rows).ravel())[1:] / total
    xs = np.bincount(flat, weights=(weight * cols).ravel())[1:] / total
    order = np.argsort(-sizes, kind="stable")
    return labels, [(float(xs[k]), float(ys[k]), int(sizes[k]), int(k) + 1) for k in order]


#: The :data:`Blob` of a slice without one: no centroid, no pixels, no label.
NO_BLOB: Blob = (float("nan"), float("nan"), 0, 0)


def consistent_blobs(blobs: list[list[Blob]], min_pixels: float, max_jump: float) -> list[Blob]:
    """One blob per slice of a stack: the largest, unless it lies more than ``max_jump`` pixels
    from the median centre of the slices' LVs (one stack: the LV moves little between slices);
    then the largest blob near that median, or none.

    Args:
        blobs: per slice, its :func:`label_blobs`, largest first.
        min_pixels: the smallest blob that counts as an LV for the median (needs 3 slices with
            one; fewer, and every slice keeps its largest blob).
        max_jump: the largest distance (pixels) from the median.

    Returns:
        The chosen :data:`Blob` per slice, :data:`NO_BLOB` for none.
    """
    first = [b[0] if b else NO_BLOB for b in blobs]
    with_lv = np.array([(x, y) for x, y, n, _ in first if n >= min_pixels])
    if len(with_lv) < 3:  # too few slices to say where the stack's LV is
        return first
    mx, my = np.median(with_lv, axis=0)
    chosen = []
    for found, best in zip(blobs, first):
        near = [b for b in found if np.hypot(b[0] - mx, b[1] - my) <= max_jump]
        if best[2] and np.hypot(best[0] - mx, best[1] - my) > max_jump:
            best = near[0] if near else NO_BLOB
        chosen.append(best)
    return chosen


@torch.no_grad()
def foreground_maps(unet: nn.Module, images: np.ndarray) -> np.ndarray:
    """:func:`foreground` of the U-Net's map of same-size images (whole slices or crops on the
    training grid), :data:`BATCH_SIZE` at a time on the U-Net's device.

    Each image is padded with its minimum to a multiple of :math:`2^{depth}` (the U-Net is
    fully convolutional) and its map cropped back after.

    Args:
        unet: the U-Net (its ``depth`` attribute gives the padding; 0 if absent); it is set
            to eval mode.
        images: float :math:`(K, H, W)`, normalised as in training.

    Returns:
        bool :math:`(K, H, W)`.
    """
    multiple = 2 ** int(getattr(unet, "depth", 0))
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    stacked = np.stack([np.pad(im, ((0, pad_h), (0, pad_w)), constant_values=float(im.min()))
                        for im in images]).astype(np.float32)
    weight = next(unet.parameters(), None)
    device = weight.device if weight is not None else torch.device("cpu")
    unet.eval()
    out = [foreground(unet(torch.from_numpy(stacked[s:s + BATCH_SIZE, None]).to(device)))
           [:, 0, :height, :width].cpu().numpy() for s in range(0, len(stacked), BATCH_SIZE)]
    return np.concatenate(out)


def located_from_grid(centres: np.ndarray, pixels: np.ndarray, blobs: list[np.ndarray | None],
                      spacing: tuple[float, float], shape: tuple[int, int],
                      min_area_mm2: float) -> Located:
    """The chosen blob of each of :math:`K` slices, found on the training grid, as
    :class:`Located` in the input slices' pixels (what both finders return).

    Args:
        centres: the blobs' centroids ``(x, y)`` on the training grid, :math:`(K, 2)` (NaN for
            none).
        pixels: their sizes in training-grid pixels, :math:`(K,)` (0 for none).
        blobs: their masks on the training grid, or ``None`` for none.
        spacing: the input slices' pixel size ``(row_mm, col_mm)``.
        shape: the input slices' ``(H, W)``.
        min_area_mm2: smallest blob that counts as an LV (:attr:`Located.has_lv`).

    Returns:
        :class:`Located`; each mask takes the grid pixel nearest to each input pixel's centre.
    """
    fr, fc = spacing[0] / SPACING_MM, spacing[1] / SPACING_MM
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    centers = np.stack([(centres[:, 0] + 0.5) / fc - 0.5, (centres[:, 1] + 0.5) / fr - 0.5], 1)
    areas = np.asarray(pixels, dtype=np.float64) * SPACING_MM**2
    h, w = shape
    masks = np.zeros((len(blobs), h, w), dtype=bool)
    for i, blob in enumerate(blobs):
        if blob is not None:
            # the grid pixel nearest to each input pixel's centre (as prepare.crop_index)
            rows = np.clip(np.floor((np.arange(h) + 0.5) * fr).astype(int), 0, blob.shape[0] - 1)
            cols = np.clip(np.floor((np.arange(w) + 0.5) * fc).astype(int), 0, blob.shape[1] - 1)
            masks[i] = blob[np.ix_(rows, cols)]
    return Located(centers, areas >= min_area_mm2, areas, masks)


@torch.no_grad()
def locate(method: str | Method, unet: nn.Module, images: np.ndarray,
           spacing: tuple[float, float], *, min_area_mm2: float = MIN_AREA_MM2) -> Located:
    """Find the LV in each of the slices ``images`` :math:`(K, H, W)` with pixel size ``spacing``.

    Args:
        method: the run's method (decides the threshold, :func:`foreground`).
        unet: the run's U-Net (its ``depth`` attribute gives the padding; 0 if absent).
        images: slices of one size, raw intensities.
        spacing: ``(row_mm, col_mm)``.
        min_area_mm2: smallest blob that counts as an LV.

    Returns:
        :class:`Located`, centres in the input slices' pixels.
    """
    images = np.asarray(images, dtype=np.float32)
    return locate_on_grid(method, unet, training_grids(images, spacing), spacing,
                          images.shape[-2:], min_area_mm2)


def locate_on_grid(method: str | Method, unet: nn.Module, grid: np.ndarray,
                   spacing: tuple[float, float], shape: tuple[int, int],
                   min_area_mm2: float) -> Located:
    """:func:`locate` on slices already on the training grid: a caller that crops the slices
    afterwards (:mod:`lvseg.centre_free`) resamples each once.

    Args:
        method: the run's method (decides the threshold, :func:`foreground`).
        unet: the run's U-Net.
        grid: the slices' :func:`lvseg.prepare.training_grids`, :math:`(K, H', W')`.
        spacing: the input slices' pixel size ``(row_mm, col_mm)``.
        shape: the input slices' ``(H, W)``.
        min_area_mm2: smallest blob that counts as an LV.

    Returns:
        :class:`Located`, centres in the input slices' pixels.
    """
    labels, blobs = [], []
    for m in foreground_maps(unet, grid):
        labelled, found = label_blobs(m)
        labels.append(labelled)
        blobs.append(found)
    chosen = consistent_blobs(blobs, min_area_mm2 / SPACING_MM**2, MAX_JUMP_MM / SPACING_MM)
    return located_from_grid(np.array([(x, y) for x, y, _, _ in chosen]),
                     np.array([n for _, _, n, _ in chosen]),
                     [labelled == label if label else None
                      for labelled, (*_, label) in zip(labels, chosen)],
                     spacing, shape, min_area_mm2)
