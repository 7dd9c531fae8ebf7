r"""Unary DP costs from a warped map."""

from __future__ import annotations

from typing import overload

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import shape
from diffbypass_stardp._checks import check_array

__all__ = ["radial_difference"]


@overload
def radial_difference(g: Tensor) -> Tensor: ...
@overload
def radial_difference(g: np.ndarray) -> np.ndarray: ...


def radial_difference(g: Tensor | np.ndarray) -> Tensor | np.ndarray:
    r"""Outward difference of a warped map along each radial line, the DP's unary cost.

    .. math::

        c[b, n, i] = g[b, n, i + 1] - g[b, n, i], \qquad g[b, n, M] := 0 .

    **Sign and index convention.** For a map that is about 1 inside the object and about 0
    outside (a network's object probability), :math:`c` is most negative, about :math:`-1`, at
    the *last point inside* the object, where the map drops. Minimising :math:`\sum_n
    c[n, v_n]` (:func:`~diffbypass_stardp.dp_solve`) therefore puts :math:`v_n` on the last
    point inside, the same index that :func:`~diffbypass_stardp.mask_to_indices` produces for
    ground truth. The thesis (eq. 4.2) writes :math:`g(n, i) - g(n, i-1)`: the same difference
    at the *first point outside*, i.e. our index plus one. The point beyond the last one is
    taken as background (0), so a line that stays inside the object up to the end of the
    pattern ends there (cost :math:`-g[n, M-1]`), as in ``mask_to_indices``. For a map that is
    low inside and high outside, pass ``-g``.

    Args:
        g: warped maps :math:`(B, N, M)`, a tensor (differentiable) or a NumPy array.

    Returns:
        Costs :math:`(B, N, M)` of the same type, dtype and device.

    Example:
        >>> import torch
        >>> g = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])   # inside for points 0 and 1
        >>> radial_difference(g)
        tensor([[[ 0., -1.,  0.,  0.]]])
    """
    check_array("g", g)
    shape("g", g, 3, "(B, N, M)")
    if isinstance(g, Tensor):
        outside = torch.zeros_like(g[:, :, :1])
        return torch.cat([g[:, :, 1:], outside], dim=2) - g
    outside = np.zeros_like(g[:, :, :1])
    return np.concatenate([g[:, :, 1:], outside], axis=2) - g
