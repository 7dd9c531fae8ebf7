r"""``StarDP``: the EDPCNN black box, warped map in, contour indices out."""

from __future__ import annotations

from typing import overload

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least, nonnegative_number, one_of, shape
from diffbypass_stardp._checks import check_array
from diffbypass_stardp.cost import radial_difference
from diffbypass_stardp.dp import LamLike, dp_solve
from diffbypass_stardp.smoothing import default_smoothing_width, smooth_indices

__all__ = ["FIT_LOSS", "StarDP"]

#: The surrogate fit loss that matches :class:`StarDP`'s default integer output: cross-entropy
#: of the surrogate's logits :math:`(B, N, M)` against the indices :math:`(B, N)`.
FIT_LOSS = "ce"

COSTS = ("radial_difference", "map")
OUTPUTS = ("indices", "float")


class StarDP:
    r"""The non-differentiable black box of EDPCNN: DP on a warped map, then smoothing.

    ``StarDP()(g)`` (or ``StarDP()(g, lam)``) computes, for warped maps :math:`g` of shape
    :math:`(B, N, M)`:

    1. the unary cost, :func:`~diffbypass_stardp.radial_difference` (default; suits a map that
       is high inside the object and low outside, e.g. a network's object probability, and
       puts :math:`v_n` on the last point inside) or the map itself (``cost="map"``, for maps
       that are already costs, low on the boundary);
    2. the exact closed-contour DP :func:`~diffbypass_stardp.dp_solve` with ``delta`` and the
       smoothness penalty :math:`\lambda \sum_n |v_n - v_{(n+1) \bmod N}|`;
    3. the circular moving average :func:`~diffbypass_stardp.smooth_indices` (thesis 5.2);
    4. ``output="indices"``: the smoothed indices rounded to int64 (half to even), the classes
       a cross-entropy surrogate learns (:data:`FIT_LOSS`); ``output="float"``: the smoothed
       indices as floats (for ``fit_loss="mse"``).

    Works on tensors (any device; result on the same device) and NumPy arrays (NumPy result),
    so it can be handed to :class:`diffbypass.Bypass` directly and pickled for process pools.

    **Two inputs.** ``lam`` is the constructor's fixed weight (default 0: the thesis' DP) unless
    the call passes one, ``box(g, lam)``, as a number or a tensor/array of shape :math:`()`
    (shared by the batch) or :math:`(B,)` (one per map). This makes :math:`\lambda` a second
    input of the black box, which a multi-input :class:`diffbypass.Bypass` can train like any
    other (the output does not depend on :math:`\lambda` smoothly, so its gradient comes from
    the estimator, e.g. a surrogate built with ``StarSurrogate(lam_input=True)``).

    Args:
        delta: DP continuity :math:`\delta \ge 0` (thesis: 1).
        smoothing: window of the moving average: ``None`` for the default odd width nearest
            :math:`N/4` (7 for :math:`N = 25`), 0 or 1 for no smoothing, or an odd width
            :math:`3 \le w \le N`.
        cost: ``"radial_difference"`` or ``"map"``.
        output: ``"indices"`` (int64) or ``"float"`` (the input's float dtype; float32 for
            integer input).
        lam: the default smoothness weight :math:`\lambda \ge 0` (a finite number).

    Example:
        >>> import torch
        >>> from diffbypass_stardp import StarDP
        >>> g = (torch.arange(65) < 30).float().expand(2, 25, 65)   # object up to point 29
        >>> StarDP()(g)[0, :5]
        tensor([29, 29, 29, 29, 29])
    """

    def __init__(
        self,
        delta: int = 1,
        smoothing: int | None = None,
        cost: str = "radial_difference",
        output: str = "indices",
        lam: float = 0.0,
    ) -> None:
        self.delta = int_at_least("delta", delta, 0)
        if smoothing is not None:
            smoothing = int_at_least("smoothing", smoothing, 0)
            if smoothing >= 2 and smoothing % 2 == 0:
                raise ValueError(
                    "smoothing must be None, 0/1 (off) or an odd window width >= 3; "
                    f"got {smoothing}"
                )
        self.smoothing = smoothing
        self.cost = one_of("cost", cost, COSTS)
        self.output = one_of("output", output, OUTPUTS)
        self.lam = nonnegative_number("lam", lam)

    def smoothing_width(self, n_lines: int) -> int | None:
        """The moving-average width used for :math:`N` lines (``None``: no smoothing)."""
        if self.smoothing is None:
            return default_smoothing_width(n_lines)
        return None if self.smoothing <= 1 else self.smoothing

    @overload
    def __call__(self, warped: Tensor, lam: LamLike | None = ...) -> Tensor: ...
    @overload
    def __call__(self, warped: np.ndarray, lam: LamLike | None = ...) -> np.ndarray: ...

    def __call__(
        self, warped: Tensor | np.ndarray, lam: LamLike | None = None
    ) -> Tensor | np.ndarray:
        """Contour indices :math:`(B, N)` for warped maps :math:`(B, N, M)`; ``lam``: the
        smoothness weight, :math:`()` or :math:`(B,)` (``None``: the constructor's)."""
        check_array("warped", warped)
        shape("warped", warped, 3, "(B, N, M)")
        lam = self.lam if lam is None else lam
        cost = radial_difference(warped) if self.cost == "radial_difference" else warped
        indices = dp_solve(cost, self.delta, lam)
        width = self.smoothing_width(int(warped.shape[1]))
        if width is not None and width > int(warped.shape[1]):
            raise ValueError(
                f"smoothing must not exceed the number of lines N={warped.shape[1]}; got {width}"
            )
        if isinstance(indices, Tensor):
            smooth = indices.to(torch.float64) if width is None else smooth_indices(
                indices.to(torch.float64), width)
            if self.output == "indices":
                return torch.round(smooth).long()
            dtype = warped.dtype if warped.is_floating_point() else torch.float32
            return smooth.to(dtype)
        smooth = indices.astype(np.float64) if width is None else smooth_indices(
            indices.astype(np.float64), width)
        if self.output == "indices":
            return np.round(smooth).astype(np.int64)
        dtype = warped.dtype if warped.dtype.kind == "f" else np.float32
        return smooth.astype(dtype)

    def __repr__(self) -> str:
        lam = f", lam={self.lam!r}" if self.lam else ""  # the thesis' DP reads as before
        return (
            f"StarDP(delta={self.delta}, smoothing={self.smoothing}, cost={self.cost!r}, "
            f"output={self.output!r}{lam})"
        )
