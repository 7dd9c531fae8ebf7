r"""Post-processing of DP indices: a circular moving average along the lines (thesis 5.2)."""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least, shape
from diffbypass_stardp._checks import check_array

__all__ = ["default_smoothing_width", "smooth_indices"]


def default_smoothing_width(n_lines: int) -> int:
    r"""The odd integer nearest to :math:`N / 4` (ties to the larger), at least 1.

    The thesis sets the filter size "around one-fourth the number of radial lines".

    Example:
        >>> [default_smoothing_width(n) for n in (12, 16, 25, 50, 100)]
        [3, 5, 7, 13, 25]
    """
    n_lines = int_at_least("n_lines", n_lines, 1)
    return max(1, 2 * math.floor((n_lines / 4 - 1) / 2 + 0.5) + 1)


def _check_width(width: int | None, n_lines: int) -> int:
    if width is None:
        return default_smoothing_width(n_lines)
    w = int_at_least("width", width, 1)
    if w % 2 == 0 or w > n_lines:
        raise ValueError(
            f"width must be an odd integer between 1 and N={n_lines} (a centred window); "
            f"got {width!r}"
        )
    return w


@overload
def smooth_indices(indices: Tensor, width: int | None = ...) -> Tensor: ...
@overload
def smooth_indices(indices: np.ndarray, width: int | None = ...) -> np.ndarray: ...


def smooth_indices(indices: Tensor | np.ndarray, width: int | None = None) -> Tensor | np.ndarray:
    r"""Circular moving average of contour indices along the line axis.

    .. math::

        \bar v_n = \frac{1}{w} \sum_{k=-(w-1)/2}^{(w-1)/2} v_{(n + k) \bmod N},

    so line :math:`N-1` and line 0 are neighbours. Averaging keeps the values inside
    :math:`[\min_n v_n, \max_n v_n]` and pulls the contour towards a circle.

    Args:
        indices: :math:`(B, N)` indices (integer or fractional), tensor or NumPy array.
        width: odd window :math:`w` with :math:`1 \le w \le N`; ``None`` uses
            :func:`default_smoothing_width` (7 for :math:`N = 25`); 1 returns the indices as
            floats unchanged.

    Returns:
        Smoothed indices :math:`(B, N)`, float: the input's float dtype, or for integer input
        ``torch.get_default_dtype()`` (tensors) / float64 (NumPy). Differentiable for float
        tensors.

    Example:
        >>> import torch
        >>> smooth_indices(torch.tensor([[0, 0, 3, 0, 0, 0]]), width=3)
        tensor([[0., 1., 1., 1., 0., 0.]])
    """
    check_array("indices", indices)
    shape("indices", indices, 2, "(B, N)")
    w = _check_width(width, int(indices.shape[1]))
    half = w // 2
    if isinstance(indices, Tensor):
        x = indices if indices.is_floating_point() else indices.to(torch.get_default_dtype())
        total = x.clone()
        for k in range(1, half + 1):
            total = total + torch.roll(x, k, dims=1) + torch.roll(x, -k, dims=1)
        return total / w
    x = indices if indices.dtype.kind == "f" else indices.astype(np.float64)
    total = x.copy()
    for k in range(1, half + 1):
        total = total + np.roll(x, k, axis=1) + np.roll(x, -k, axis=1)
    return total / w
