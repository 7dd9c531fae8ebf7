r"""Pixel operations shared by the preprocessing of datasets and of new images (prediction).

:func:`resample` brings an image to square pixels of a given size, :func:`normalize_intensities`
clips and standardises its intensities, and :func:`crop_around` crops or pads it around a
point. :func:`~lvseg.data.preprocess` applies them to every loaded slice (centred on the LV) and
:func:`lvseg.prepare.prepare_image` to a new slice (centred on the given star centre), so
training and prediction see the same images.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAX_RESAMPLED_PIXELS", "crop_around", "normalize_intensities", "resample"]

#: The largest image :func:`resample` makes (4096 x 4096 pixels, 64 MiB in float32): checked
#: from the shapes before anything is allocated, so one bad header cannot ask for gigabytes.
MAX_RESAMPLED_PIXELS = 4096 * 4096


def resample(
    image: np.ndarray, mask: np.ndarray | None, spacing: tuple[float, float], target: float
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Resample an image (bilinear) and its mask (bilinear, threshold 0.5) to ``target`` mm.

    The output has :math:`\mathrm{round}(H \cdot s_r / t) \times \mathrm{round}(W \cdot s_c / t)`
    pixels of exactly ``target`` mm, aligned on the image's top-left outer corner. Samples
    between the outermost pixel centres and the image's outer edge repeat the edge pixel.

    Args:
        image: float :math:`(H, W)`.
        mask: bool :math:`(H, W)`, or ``None`` for an image alone (prediction: nothing to
            resample, and ``None`` comes back).
        spacing: input pixel size ``(row_mm, col_mm)``.
        target: output pixel size in mm.

    Returns:
        ``(image float32, mask bool or None)`` of the new shape.

    Raises:
        ValueError: if the new shape would exceed :data:`MAX_RESAMPLED_PIXELS` (checked before
            allocating it).

    Example:
        >>> img, m = resample(np.ones((10, 10)), np.ones((10, 10), bool), (2.0, 2.0), 1.0)
        >>> img.shape, int(m.sum())
        ((20, 20), 400)
    """
    from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

    image = np.asarray(image, dtype=np.float32)
    mask = None if mask is None else np.asarray(mask, dtype=bool)
    factors = np.array([spacing[0] / target, spacing[1] / target], dtype=np.float64)
    if np.allclose(factors, 1.0, rtol=0, atol=1e-9):
        return image.copy(), None if mask is None else mask.copy()
    out_shape = tuple(max(1, int(round(n * f))) for n, f in zip(image.shape, factors))
    if out_shape[0] * out_shape[1] > MAX_RESAMPLED_PIXELS:
        raise ValueError(
            f"resampling the {image.shape[0]}x{image.shape[1]} image from "
            f"{spacing[0]:g} x {spacing[1]:g} mm to {target:g} mm pixels would make it "
            f"{out_shape[0]}x{out_shape[1]} pixels, more than the {MAX_RESAMPLED_PIXELS} lvseg "
            "allows; check its pixel spacing"
        )
    # output pixel j covers [j, j + 1) * target mm; its centre is input coordinate (j + .5)/f - .5
    kwargs = {"matrix": 1.0 / factors, "offset": 0.5 / factors - 0.5,
              "output_shape": out_shape, "order": 1, "mode": "nearest"}
    new_image = ndimage.affine_transform(image, **kwargs)
    if mask is None:
        return new_image.astype(np.float32, copy=False), None
    new_mask = ndimage.affine_transform(mask.astype(np.float32), **kwargs) >= 0.5
    return new_image.astype(np.float32, copy=False), new_mask


def normalize_intensities(
    image: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)
) -> np.ndarray:
    """Clip to the ``percentiles`` and scale to zero mean and unit variance (step 3).

    A constant image stays constant (it is only shifted to 0).

    Example:
        >>> float(normalize_intensities(np.array([[0.0, 2.0], [4.0, 6.0]]), (0.0, 100.0)).std())
        1.0
    """
    lo, hi = np.percentile(image, percentiles)
    image = np.clip(image, lo, hi)
    std = float(image.std())
    return (image - image.mean()) / (std if std > 0 else 1.0)


def crop_around(
    image: np.ndarray,
    center: tuple[float, float],
    size: tuple[int, int],
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """Crop or pad ``image`` (and ``mask``) to ``size`` around ``center`` (step 4).

    The crop's pixel ``(H // 2, W // 2)`` is the image pixel nearest to ``center`` = (row,
    column); padding takes the image's lowest value and an empty mask.

    Returns:
        ``(image crop, mask crop or None, (top, left))``: ``(top, left)`` is the image position
        of the crop's pixel ``(0, 0)`` (negative when padded).

    Example:
        >>> crop, _, origin = crop_around(np.arange(25.0).reshape(5, 5), (0.0, 4.0), (3, 3))
        >>> crop.tolist(), origin
        ([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0], [8.0, 9.0, 0.0]], (-1, 3))
    """
    height, width = int(size[0]), int(size[1])
    top = int(math.floor(center[0] + 0.5)) - height // 2
    left = int(math.floor(center[1] + 0.5)) - width // 2
    crop = _window(image, top, left, height, width, fill=float(image.min()))
    mask_crop = None if mask is None else _window(mask, top, left, height, width, fill=False)
    return crop, mask_crop, (top, left)


def _window(
    array: np.ndarray, top: int, left: int, height: int, width: int, fill: object
) -> np.ndarray:
    out = np.full((height, width), fill, dtype=array.dtype)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + height, array.shape[0]), min(left + width, array.shape[1])
    if r0 < r1 and c0 < c1:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = array[r0:r1, c0:c1]
    return out
