r"""Sampling an image-sized map on the star pattern: the *warped map* of EDPCNN."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from diffbypass.validation import one_of
from diffbypass_stardp._checks import check_array

__all__ = ["warp"]

MODES = ("nearest", "bilinear")
PADDINGS = ("border", "zeros")


def _as_tensor(name: str, value: Tensor | np.ndarray) -> Tensor:
    check_array(name, value)
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    return t


def warp(
    maps: Tensor | np.ndarray,
    points: Tensor | np.ndarray,
    *,
    mode: str = "nearest",
    padding: str = "border",
) -> Tensor:
    r"""Sample maps at star-pattern points: :math:`g[b, n, i] = \text{map}_b(p[b, n, i])`.

    Pixel :math:`(\text{row } y, \text{column } x)` of a map is the value at integer coordinates
    ``(x, y)`` (pixel centres), as in :func:`~diffbypass_stardp.star_points`.

    * ``mode="nearest"`` (the thesis' choice): the value of the nearest pixel, coordinates
      rounded half up (:math:`\lfloor x + 1/2 \rfloor`). Differentiable with respect to
      ``maps`` only.
    * ``mode="bilinear"``: bilinear interpolation between the four surrounding pixel centres
      (``torch.nn.functional.grid_sample`` with ``align_corners=True``, so ``(0, 0)`` and
      ``(W-1, H-1)`` are the centres of the corner pixels). Differentiable with respect to
      ``maps`` and ``points``.

    Points outside the image (:math:`x \notin [0, W-1]` or :math:`y \notin [0, H-1]`) read
    ``padding="border"`` (default): the value at the nearest point of the image border, so a
    pattern sticking out of the image repeats the edge; or ``padding="zeros"``: zero (bilinear:
    zero outside, blended with the edge pixels within one pixel of the border).

    Args:
        maps: :math:`(B, 1, H, W)` or :math:`(B, H, W)` float maps (NumPy arrays are converted
            to tensors; integer maps to the default float dtype).
        points: :math:`(B, N, M, 2)` coordinates ``(x, y)``, e.g. from
            :func:`~diffbypass_stardp.star_points`.
        mode: ``"nearest"`` or ``"bilinear"``.
        padding: ``"border"`` or ``"zeros"``.

    Returns:
        The warped maps :math:`(B, N, M)`, in ``maps``' dtype and device.

    Example:
        >>> import torch
        >>> from diffbypass_stardp import star_points
        >>> maps = torch.arange(25.0).reshape(1, 5, 5)         # value = 5 * y + x
        >>> p = star_points(torch.tensor([[2.0, 2.0]]), n_lines=4, n_points=2, radius=2.0)
        >>> warp(maps, p)                                       # right, down, left, up
        tensor([[[13., 14.],
                 [17., 22.],
                 [11., 10.],
                 [ 7.,  2.]]])
    """
    m = _as_tensor("maps", maps)
    p = _as_tensor("points", points)
    mode = one_of("mode", mode, MODES)
    padding = one_of("padding", padding, PADDINGS)
    if m.ndim == 4:
        if m.shape[1] != 1:
            raise ValueError(
                f"maps must have shape (B, 1, H, W) or (B, H, W); got {tuple(m.shape)} "
                f"with {m.shape[1]} channels"
            )
        m = m[:, 0]
    elif m.ndim != 3:
        raise ValueError(f"maps must have shape (B, 1, H, W) or (B, H, W); got {tuple(m.shape)}")
    if p.ndim != 4 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (B, N, M, 2) as (x, y); got {tuple(p.shape)}")
    if p.shape[0] != m.shape[0]:
        raise ValueError(
            f"points must have the batch size of maps ({m.shape[0]}); got {p.shape[0]}"
        )
    if p.device != m.device:
        raise ValueError(f"points must be on maps' device {m.device}; got {p.device}")
    p = p.to(m.dtype)
    b, h, w = m.shape
    if mode == "bilinear":
        scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=m.dtype,
                             device=m.device)
        grid = p * scale - 1.0
        out = F.grid_sample(m[:, None], grid, mode="bilinear", padding_mode=padding,
                            align_corners=True)
        return out[:, 0]
    x = torch.floor(p[..., 0].detach() + 0.5).long()
    y = torch.floor(p[..., 1].detach() + 0.5).long()
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    flat = (y.clamp(0, h - 1) * w + x.clamp(0, w - 1)).reshape(b, -1)
    out = torch.gather(m.reshape(b, -1), 1, flat).reshape(x.shape)
    if padding == "zeros":
        out = torch.where(inside, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out
