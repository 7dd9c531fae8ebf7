"""Array checks specific to this plugin (scalars are checked with :mod:`diffbypass.validation`).

Messages name the argument, the expectation and what was received: ``"cost must have shape
(B, N, M); got (25, 65)"``.
"""

from __future__ import annotations

import numbers
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import nonnegative_number, number_in, shape

ArrayLike = Union[Tensor, np.ndarray]

_FLOAT_UPCAST = (np.float16,)
_TORCH_UPCAST = (torch.float16, torch.bfloat16)


def check_array(name: str, value: Any) -> None:
    if not isinstance(value, (Tensor, np.ndarray)):
        raise TypeError(
            f"{name} must be a torch.Tensor or numpy.ndarray; got {type(value).__name__}"
        )


def check_cost(cost: Any) -> tuple[int, int, int]:
    """Validate the type and shape of a DP cost; returns ``(B, N, M)``."""
    check_array("cost", cost)
    n_batch, n_lines, m = shape("cost", cost, 3, "(B, N, M)")
    if n_lines < 3:
        raise ValueError(f"cost must have N >= 3 lines (dimension 1 of (B, N, M)); got N={n_lines}")
    if m < 2:
        raise ValueError(
            f"cost must have M >= 2 points per line (dimension 2 of (B, N, M)); got M={m}"
        )
    return n_batch, n_lines, m


def real_numpy(name: str, value: ArrayLike) -> np.ndarray:
    """A C-contiguous float32/float64 NumPy copy or view of ``value`` (detached, on the CPU).

    float16/bfloat16 become float32 (exact), integers become float64 (exact up to 2**53); bool
    and complex arrays are rejected.
    """
    if isinstance(value, Tensor):
        t = value.detach()
        if t.dtype in _TORCH_UPCAST:
            t = t.float()
        if t.dtype.is_complex or t.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers; got dtype {value.dtype}")
        arr = t.cpu().numpy()
    else:
        arr = value
    if arr.dtype.kind == "f" and arr.dtype.type in _FLOAT_UPCAST:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    elif arr.dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise naming the first batch element of ``arr`` that holds NaN or inf."""
    finite = np.isfinite(arr)
    if not finite.all():
        b = int(np.argmin(finite.reshape(len(arr), -1).all(axis=1)))
        raise ValueError(
            f"{name} must be finite; got NaN or inf in batch element {b} "
            "(replace them, e.g. with torch.nan_to_num, before calling)"
        )


def check_magnitude(name: str, peak: float, limit: float, dtype: object, n_lines: int) -> None:
    """Reject costs whose largest magnitude ``peak`` exceeds ``limit`` (sums of ``N`` would
    overflow or reach the DP's stand-in for infinity)."""
    if peak > limit:
        raise ValueError(
            f"{name} must have magnitude at most {limit:.3g} for dtype {dtype} and N={n_lines} "
            f"lines (sums of N costs must stay finite); got max |{name}| = {peak:.3g}; rescale "
            f"{name} (multiplying it by a positive number does not change the optimal contour)"
        )


def check_lam(lam: Any, n_batch: int) -> None:
    """Validate a smoothness weight: a finite number >= 0, or a tensor/array of shape ``()``
    (shared) or ``(B,)`` (one per contour) with finite entries >= 0."""
    if not isinstance(lam, (Tensor, np.ndarray)):
        nonnegative_number("lam", lam)
        return
    if tuple(lam.shape) not in ((), (n_batch,)):
        raise ValueError(
            f"lam must be a number or a tensor of shape () (shared) or (B,) = ({n_batch},) "
            f"(one per contour); got shape {tuple(lam.shape)}"
        )
    dtype = lam.dtype
    if isinstance(lam, Tensor):
        real = not (dtype.is_complex or dtype == torch.bool)
        values = lam.detach().double().cpu().numpy() if real else None
    else:
        real = dtype.kind in "iuf"
        values = lam.astype(np.float64) if real else None
    if values is None:
        raise ValueError(f"lam must hold real numbers; got dtype {dtype}")
    bad = ~(np.isfinite(values) & (values >= 0))
    if bad.any():
        i = int(np.argmax(bad.reshape(-1)))
        raise ValueError(
            f"lam must be finite and >= 0; got {float(values.reshape(-1)[i])!r} at index {i}"
        )


def lam_numpy(lam: Any, n_batch: int) -> np.ndarray | None:
    """The validated smoothness weight as a C-contiguous float64 array of shape ``(B,)``, or
    ``None`` when no contour is penalised (every weight 0, or an empty batch).

    The plain number 0 (``int`` or ``float``, the default) returns ``None`` at once: the
    single-input DP pays nothing for validating and broadcasting it.
    """
    if lam.__class__ in (int, float) and lam == 0:
        return None
    check_lam(lam, n_batch)
    if isinstance(lam, Tensor):
        lam = lam.detach().double().cpu().numpy()
    weights = np.ascontiguousarray(np.broadcast_to(np.asarray(lam, dtype=np.float64), (n_batch,)))
    return weights if weights.any() else None


def lam_tensor(lam: Any, n_batch: int, like: Tensor) -> Tensor | None:
    """The validated smoothness weight as a ``(B,)`` tensor of ``like``'s dtype and device
    (differentiable if ``lam`` requires grad); ``None`` for the number 0 (no penalty)."""
    check_lam(lam, n_batch)
    if not isinstance(lam, (Tensor, np.ndarray)) and lam == 0:
        return None
    if isinstance(lam, Tensor):
        return lam.to(dtype=like.dtype, device=like.device).expand(n_batch)
    # a number or array straight in like's dtype (not through float32: float64 costs keep it)
    return torch.as_tensor(lam, dtype=like.dtype, device=like.device).expand(n_batch)


def check_penalty_range(lam_max: float, delta: int, limit: float, n_lines: int) -> None:
    """Reject a weight whose largest penalty ``lam * delta`` exceeds ``limit`` (sums of ``N``
    penalties would overflow or reach the DP's stand-in for infinity)."""
    if lam_max * delta > limit:
        raise ValueError(
            f"lam * delta must be at most {limit:.3g} for N={n_lines} lines (sums of N "
            f"penalties must stay finite); got lam = {lam_max:.3g}, delta = {delta}"
        )


def check_mask_shape(shape: object) -> tuple[int, int]:
    """``shape`` as ``(H, W)`` positive ints (the size of a mask)."""
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                   for s in shape)
    ):
        raise ValueError(f"shape must be (H, W) with positive integers; got {shape!r}")
    return int(shape[0]), int(shape[1])


def check_offset(offset: Any) -> float:
    """Where a contour is drawn (``contour_points``, ``segment_stars``): ``offset`` point steps
    beyond the indices, a number in :math:`[0, 1]`."""
    return number_in("offset", offset, 0.0, 1.0)
