r"""The star pattern: ``N`` radial lines of ``M`` points around a centre."""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least, positive_number

__all__ = ["star_points"]


def _as_float_tensor(name: str, value: object) -> Tensor:
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, (np.ndarray, numbers.Real)) and not isinstance(value, bool):
        t = torch.as_tensor(value)
    else:
        raise TypeError(f"{name} must be a torch.Tensor, numpy.ndarray or number; got "
                        f"{type(value).__name__}")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite; got NaN or inf")
    return t


def star_points(
    centers: Tensor | np.ndarray,
    *,
    n_lines: int = 25,
    n_points: int = 65,
    radius: float = 65.0,
    angle: float | Tensor | np.ndarray = 0.0,
    image_shape: tuple[int, int] | None = None,
) -> Tensor:
    r"""Pixel coordinates of a star pattern around each centre.

    Line :math:`n` points in direction :math:`\theta_n = \text{angle} + 2\pi n / N` and point
    :math:`i` of it lies at distance :math:`r_i = R\,(i + 1) / M` from the centre
    :math:`(c_x, c_y)`:

    .. math::

        p[b, n, i] = \bigl(c_x + r_i \cos\theta_n,\; c_y + r_i \sin\theta_n\bigr).

    Coordinates are ``(x, y)`` = (column, row) in pixels, pixel centres at integers. With
    :math:`M = R` (thesis: :math:`N = 25`, :math:`M = R = 65`) points are 1 px apart and the
    last one is :math:`R` px from the centre; the centre itself is not a point of the pattern.
    Rotating by :math:`2\pi / N` shifts the line index by one.

    Args:
        centers: star centres :math:`(B, 2)` as ``(x, y)``, sub-pixel allowed.
        n_lines: number of radial lines :math:`N \ge 3`.
        n_points: points per line :math:`M \ge 2`.
        radius: length :math:`R > 0` of the lines in pixels.
        angle: rotation of line 0 in radians, a scalar or one per image :math:`(B,)` (the thesis
            draws it uniformly from :math:`[-0.5, 0.5]` during training).
        image_shape: optional ``(H, W)``; if given, every centre must lie inside the image,
            :math:`0 \le c_x \le W - 1` and :math:`0 \le c_y \le H - 1`.

    Returns:
        Points :math:`(B, N, M, 2)` in ``centers``' floating dtype (default dtype for integer
        centres) and device. Differentiable with respect to ``centers`` and ``angle``.

    Raises:
        ValueError: bad shapes or sizes, non-finite values, a centre outside ``image_shape``.

    Example:
        >>> import torch
        >>> p = star_points(torch.tensor([[10.0, 20.0]]), n_lines=4, n_points=2, radius=2.0)
        >>> p.shape
        torch.Size([1, 4, 2, 2])
        >>> p[0, 0].tolist(), p[0, 1].round().tolist()   # line 0 along +x, line 1 along +y
        ([[11.0, 20.0], [12.0, 20.0]], [[10.0, 21.0], [10.0, 22.0]])
    """
    c = _as_float_tensor("centers", centers)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"centers must have shape (B, 2) as (x, y); got {tuple(c.shape)}")
    n_lines = int_at_least("n_lines", n_lines, 3)
    n_points = int_at_least("n_points", n_points, 2)
    radius = positive_number("radius", radius)
    a = _as_float_tensor("angle", angle).to(device=c.device, dtype=c.dtype)
    if a.ndim != 0 and a.shape != (len(c),):
        raise ValueError(
            f"angle must be a scalar or have shape (B,) = ({len(c)},); got {tuple(a.shape)}"
        )
    if image_shape is not None:
        _check_inside(c, image_shape)

    if a.ndim == 0 and not a.requires_grad:  # one pattern for every centre, made once
        offsets = _offsets(n_lines, n_points, radius, float(a), c.dtype, c.device)
        return c[:, None, None, :] + offsets
    if a.ndim == 0:
        a = a.expand(len(c))
    return c[:, None, None, :] + _pattern(a, n_lines, n_points, radius)


def _pattern(a: Tensor, n_lines: int, n_points: int, radius: float) -> Tensor:
    r"""The star's offsets from its centre, :math:`r_i (\cos\theta_n, \sin\theta_n)`, for
    rotations ``a`` :math:`(B,)`: :math:`(B, N, M, 2)`."""
    line = torch.arange(n_lines, device=a.device, dtype=a.dtype)
    theta = a[:, None] + (2 * math.pi / n_lines) * line  # (B, N)
    r = radius * torch.arange(1, n_points + 1, device=a.device, dtype=a.dtype) / n_points
    direction = torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1)  # (B, N, 2)
    return r[None, None, :, None] * direction[:, :, None, :]


@functools.lru_cache(maxsize=64)
def _offsets(n_lines: int, n_points: int, radius: float, angle: float, dtype: torch.dtype,
             device: torch.device) -> Tensor:
    """:func:`_pattern` of one rotation (the same numbers as for a batch), cached."""
    a = torch.tensor([angle], dtype=dtype, device=device)
    return _pattern(a, n_lines, n_points, radius)[0]


def _check_inside(c: Tensor, image_shape: tuple[int, int]) -> None:
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) != 2
        or not all(isinstance(s, numbers.Integral) and s >= 1 for s in image_shape)
    ):
        raise ValueError(f"image_shape must be (H, W) with positive integers; got {image_shape!r}")
    h, w = image_shape
    x, y = c[:, 0], c[:, 1]
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    if bool(outside.any()):
        b = int(torch.nonzero(outside)[0, 0])
        raise ValueError(
            f"centers must lie inside the image (0 <= x <= {w - 1}, 0 <= y <= {h - 1}); "
            f"got centre {b} at (x={float(x[b]):g}, y={float(y[b]):g})"
        )
