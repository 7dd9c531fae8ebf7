"""The star padding of :class:`~diffbypass_stardp.StarSurrogate`'s convolutions: circular along
the lines, edge replication along the points, with a cheaper backward than autograd's."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def _pad_star(x: Tensor, lines: int, points: int) -> Tensor:
    """Pad ``(B, C, N, M)``: circularly along the lines (line N-1 next to line 0), by edge
    replication along the points.

    Where every value is copied at most once (``2 * lines <= N``; one point, ``M >= 2``) by
    concatenation, with :class:`_StarPad`'s backward: the same values and gradients as
    ``F.pad``'s circular and replicate modes (a gradient sums at most two terms per axis, in
    ``F.pad``'s order: the points first, then the lines), in fewer and cheaper operations.
    """
    n, m = x.shape[-2:]
    fast_lines = not lines or 2 * lines <= n
    fast_points = not points or (points == 1 and m >= 2)
    if fast_lines and fast_points:
        return _StarPad.apply(x, lines, points) if lines or points else x
    if lines:
        x = F.pad(x, (0, 0, lines, lines), mode="circular")
    if points:
        x = F.pad(x, (points, points, 0, 0), mode="replicate")
    return x


class _StarPad(torch.autograd.Function):
    """:func:`_pad_star` by concatenation (``2 * lines <= N``; ``points`` 0, or 1 with
    ``M >= 2``), with a backward that folds the copies' gradients into the copied values.

    Autograd's own backward of the concatenations builds a zero tensor of the full size for each
    copied slice and adds it. Here each value's gradient is its own plus that of its one copy
    along each axis, summed in the same order (the points first, then the lines): the same
    values bit for bit. The backward is made of differentiable operations (higher-order
    gradients work).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, lines: int, points: int) -> Tensor:
        ctx.pads = (lines, points)
        if lines:
            x = torch.cat([x[..., x.shape[-2] - lines:, :], x, x[..., :lines, :]], dim=-2)
        if points:
            x = torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)
        return x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        lines, points = ctx.pads
        if points:  # add_ on views: ``+=`` on an index would copy the sum back once more
            folded = grad[..., 1:-1].clone()
            folded[..., :1].add_(grad[..., :1])
            folded[..., -1:].add_(grad[..., -1:])
            grad = folded
        if lines:
            folded = grad[..., lines:-lines, :].clone()
            folded[..., :lines, :].add_(grad[..., -lines:, :])
            folded[..., -lines:, :].add_(grad[..., :lines, :])
            grad = folded
        return grad, None, None
