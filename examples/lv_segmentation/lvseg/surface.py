r"""Surface distances between two masks: Hausdorff distance (HD, HD95) and ASSD, in mm.

Surface distances are measured between mask *boundaries*: the mask pixels with a 4-neighbour
outside the mask (pixels on the edge of the evaluated region count as boundary), at their pixel
centres, in millimetres using the pixel spacing. With :math:`d(a, B)` the distance from point
:math:`a` to the nearest point of :math:`B`, :math:`P, T` the boundaries of prediction and
truth, and :math:`Q_{95}` the 95th percentile with linear interpolation (``numpy.percentile``),

.. math::

    \mathrm{HD} = \max\{\max_{p \in P} d(p, T),\ \max_{t \in T} d(t, P)\}, \qquad
    \mathrm{HD95} = \max\{Q_{95}\, d(P, T),\ Q_{95}\, d(T, P)\},

.. math::

    \mathrm{ASSD} = \frac{\sum_{p \in P} d(p, T) + \sum_{t \in T} d(t, P)}{|P| + |T|}.

Empty masks, by convention:

==========================  ======  ===============  ===========
case                        Dice    HD, HD95         ASSD
==========================  ======  ===============  ===========
both empty                  1.0     0.0              0.0
one empty                   0.0     ``nan``          ``nan``
==========================  ======  ===============  ===========

:func:`~lvseg.metrics.evaluate_masks` also returns flags ``pred_empty`` and ``true_empty``, and
:func:`~lvseg.metrics.summarize` averages HD, HD95 and ASSD over the defined cases while counting the
undefined ones.

Relation to MONAI (tested against MONAI 1.6 in ``tests/lv_segmentation``): on non-empty masks
:func:`dice`, :func:`hausdorff_distance`, :func:`hd95` and :func:`assd` of the cropped masks
equal ``monai.metrics.compute_dice``, ``compute_hausdorff_distance`` (``percentile=None`` and
``95``) and ``compute_average_surface_distance(symmetric=True)`` with
``include_background=True`` and ``spacing=(row_mm, col_mm)``: MONAI's edges
(``binary_erosion(m) ^ m``, 4-connected, the array border counting as outside) are our boundary
pixels, its HD95 is the same maximum of the two directed percentiles, and MONAI computes in
float32, so values agree to float32 rounding (relative :math:`10^{-6}`; HD95 to
:math:`10^{-5}`, from MONAI's float32 percentile position). The differences are conventions:

- **Crop**: MONAI sees whatever array it is given; :func:`~lvseg.metrics.evaluate_masks` gives it the star's
  square, whose edge is the array border (a mask cut by the square gets boundary pixels there).
- **Empty masks**: MONAI returns Dice ``nan`` for an empty truth (``ignore_empty=True``, its
  default) or 1.0 with ``ignore_empty=False`` when both are empty; HD and ASSD ``nan`` when both
  are empty and ``inf`` when one is; HD95 ``nan`` when either is. We return 1.0 / 0.0 / 0.0 / 0.0
  (a perfect prediction of nothing) and ``nan`` for HD, HD95 and ASSD when exactly one is empty
  (counted by :func:`~lvseg.metrics.summarize`, never averaged as a number).
- **HD95 elsewhere**: MedPy's ``hd95`` takes the 95th percentile of the *union* of both directed
  distance sets (typically smaller than ours); ours follows MONAI, as does DeepMind's
  surface-distance ``compute_robust_hausdorff`` up to its surface-area weights and percentile
  rule.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from lvseg.data.types import positive_sizes

__all__ = ["as_numpy", "assd", "boundary", "hausdorff_distance", "hausdorff_nd", "hd95",
           "mask_pair", "surface_distances"]


def boundary(mask: Any) -> np.ndarray:
    """Boundary pixels: mask pixels with a 4-neighbour outside the mask or the array.

    Example:
        >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
        >>> boundary(m).astype(int)[1:4, 1:4]
        array([[1, 1, 1],
               [1, 0, 1],
               [1, 1, 1]])
    """
    return _boundary(_mask(mask, "mask"))


def _boundary(m: np.ndarray) -> np.ndarray:
    """The voxels of bool mask ``m`` (any dimension) with a face neighbour outside it or the
    array: the 4-neighbours of a 2-D mask, the 6 of a 3-D one."""
    from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

    faces = ndimage.generate_binary_structure(m.ndim, 1)
    return m & ~ndimage.binary_erosion(m, structure=faces, border_value=0)


def surface_distances(
    pred: Any, true: Any, spacing: float | Sequence[float] = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each prediction boundary pixel to the truth boundary, and back.

    Args:
        pred: predicted mask :math:`(H, W)`.
        true: ground-truth mask :math:`(H, W)`.
        spacing: pixel size in mm, one number or ``(row_mm, col_mm)``.

    Returns:
        ``(pred_to_true, true_to_pred)``, float64 arrays of the boundary sizes; both empty if
        either mask is empty (the distances are undefined).
    """
    return _distances(*mask_pair(pred, true), _spacing(spacing))


def _distances(p: np.ndarray, t: np.ndarray, sampling: Sequence[float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`surface_distances` of two checked bool masks of one shape, any dimension, voxel
    size ``sampling`` (mm per axis)."""
    from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

    bp, bt = _boundary(p), _boundary(t)
    if not bp.any() or not bt.any():
        return np.zeros(0), np.zeros(0)
    to_true = ndimage.distance_transform_edt(~bt, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~bp, sampling=sampling)
    return to_true[bp], to_pred[bt]


def hausdorff_distance(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """Symmetric Hausdorff distance in mm between the mask boundaries (module docstring).

    Returns 0.0 if both masks are empty and ``nan`` if exactly one is.

    Example:
        >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
        >>> b = np.zeros((8, 8), bool); b[2:5, 2:6] = True
        >>> hausdorff_distance(a, b, spacing=(1.0, 2.0))
        2.0
    """
    return hausdorff_nd(*mask_pair(pred, true), _spacing(spacing))


def hausdorff_nd(pred: np.ndarray, true: np.ndarray, sampling: Sequence[float]) -> float:
    """:func:`hausdorff_distance` of two bool masks of one shape and any dimension, with the
    pixel (voxel) size ``sampling`` in mm, one per axis; the boundary is the mask voxels with a
    face neighbour outside the mask or the array. The caller checks the masks and ``sampling``:
    :func:`hausdorff_distance` in 2-D, :func:`lvseg.volumes.hausdorff_3d` in 3-D.

    Example:
        >>> a = np.zeros((3, 5, 5), bool); a[1, 2, 2] = True
        >>> b = np.zeros((3, 5, 5), bool); b[2, 2, 2] = True
        >>> hausdorff_nd(a, b, (10.0, 1.0, 1.0))
        10.0
    """
    return _from_masks(pred, true, sampling, lambda a, b: float(max(a.max(), b.max())))


def hd95(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """95th-percentile Hausdorff distance in mm: the larger directed 95th percentile.

    See the module docstring for the definition and its relation to MONAI and MedPy.

    Robust to a few outlying boundary pixels, unlike :func:`hausdorff_distance`. Returns 0.0 if
    both masks are empty and ``nan`` if exactly one is.

    Example:
        >>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
        >>> b = np.zeros((8, 8), bool); b[2:5, 2:6] = True
        >>> hd95(a, b, spacing=(1.0, 2.0))
        2.0
    """
    return _from_masks(
        *mask_pair(pred, true), _spacing(spacing),
        lambda a, b: float(max(np.percentile(a, 95.0), np.percentile(b, 95.0))),
    )  # fmt: skip


def assd(pred: Any, true: Any, spacing: float | Sequence[float] = 1.0) -> float:
    """Average symmetric surface distance in mm (module docstring).

    Returns 0.0 if both masks are empty and ``nan`` if exactly one is.
    """
    return _from_masks(
        *mask_pair(pred, true), _spacing(spacing),
        lambda a, b: float((a.sum() + b.sum()) / (a.size + b.size)),
    )  # fmt: skip


def _from_masks(p: np.ndarray, t: np.ndarray, sampling: Sequence[float],
                reduce: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """``reduce(pred_to_true, true_to_pred)`` of two checked masks; the empty conventions of
    the module docstring: 0.0 when both are empty, ``nan`` when exactly one is."""
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return math.nan
    return reduce(*_distances(p, t, sampling))


def as_numpy(x: Any) -> np.ndarray:
    """``x`` (a torch tensor, on any device, or anything ``numpy.asarray`` takes) as a numpy
    array: how every mask and number of this module and :mod:`lvseg.metrics` is read."""
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _mask(x: Any, name: str) -> np.ndarray:
    m = as_numpy(x)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask (H, W); got shape {m.shape}")
    return m.astype(bool, copy=False)


def mask_pair(pred: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    """A prediction and its truth as two bool 2-D masks of one shape (:func:`as_numpy`).

    Raises:
        ValueError: naming ``pred`` or ``true``, if one is not 2-D or their shapes differ.
    """
    p, t = _mask(pred, "pred"), _mask(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"pred and true must have the same shape; got {p.shape} and {t.shape}")
    return p, t


def _spacing(spacing: float | Sequence[float]) -> tuple[float, float]:
    try:
        values = np.asarray(spacing, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.zeros(0)
    pair = positive_sizes(np.repeat(values, 2) if values.size == 1 else values, 2)
    if pair is None:
        raise ValueError(
            f"spacing must be a positive number or (row_mm, col_mm); got {spacing!r}"
        )
    return pair[0], pair[1]
