r"""The star pattern and the DP on it: :class:`StarConfig` (thesis §5.4).

The settings of the star (lines, points, radius), of the DP on it (smoothness ``delta``, the
moving average), of what the bypass sees (interpolation of the warp, pooling for ES-lo) and
where the contour is drawn into a mask (``edge_offset``: inference, and the teacher's masks of
``--unlabelled``), and when a contour lies at the star's rim (:func:`at_rim`: the DP found no
edge; the volume checks name the slice) and when a training fell there (:func:`training_fell`:
most validation images at the rim; training warns of it). The black box comes from the
``stardp`` plugin (:mod:`lvseg.star_dp`). The module imports torch and the plugin only where a
setting is used, so ``lvseg train --help`` starts neither.

Example:
    >>> import torch
    >>> star = StarConfig(n_lines=8, n_points=16, radius=12.0)
    >>> star.points(torch.full((1, 2), 16.0)).shape
    torch.Size([1, 8, 16, 2])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from diffbypass.validation import int_at_least, one_of
from lvseg.data.preprocessing import CROP_SIZE
from lvseg.options import check_fields, document, option

if TYPE_CHECKING:
    from torch import Tensor

    from diffbypass_stardp import StarDP
    from lvseg.star_dp import PooledDP

__all__ = ["INTERPOLATIONS", "RIM_FRACTION", "RIM_IMAGE_FRACTION", "RIM_TOLERANCE", "StarConfig",
           "at_rim", "lines_at_rim", "mostly_at_rim", "training_fell"]

#: Sampling modes of the output map on the star (``warp``'s ``mode``).
INTERPOLATIONS = ("nearest", "bilinear")
#: A star line whose contour point lies beyond this fraction of the star radius is "at the rim".
RIM_TOLERANCE = 0.95
#: Warn when more than this fraction of the star's lines end at the rim (the DP found no edge).
RIM_FRACTION = 0.5
#: A training fell when more than this fraction of the validation images have their contour at
#: the rim (:func:`training_fell`; the images are counted by :func:`at_rim`).
RIM_IMAGE_FRACTION = 0.5


def lines_at_rim(radii: np.ndarray, star_radius: float, *,
                 tolerance: float = RIM_TOLERANCE) -> np.ndarray:
    """How many lines of each contour end at the star's rim: ``radii`` :math:`(..., N)`, the
    contour's distance from the centre on each of the :math:`N` lines, to counts :math:`(...)`;
    a line is at the rim when its radius is at least ``tolerance * star_radius``.

    Example:
        >>> lines_at_rim(np.array([[10, 65, 65, 65], [10, 12, 11, 65]]), 65.0)
        array([3, 1])
    """
    return (np.asarray(radii, dtype=np.float64) >= tolerance * star_radius).sum(axis=-1)


def mostly_at_rim(rim_lines: np.ndarray | int, n_lines: int, *,
                  fraction: float = RIM_FRACTION) -> np.ndarray:
    """Whether a contour with ``rim_lines`` of its ``n_lines`` lines at the rim (the counts of
    :func:`lines_at_rim`) lies at the rim: on more than ``fraction`` of its lines.

    For a caller that needs the count as well as the decision (a warning names both), so the
    lines are counted once.

    Example:
        >>> mostly_at_rim(np.array([3, 1, 2]), 4)
        array([ True, False, False])
    """
    return np.asarray(rim_lines) > fraction * n_lines


def at_rim(radii: np.ndarray, star_radius: float, *, tolerance: float = RIM_TOLERANCE,
           fraction: float = RIM_FRACTION) -> np.ndarray:
    """Whether each contour of ``radii`` :math:`(..., N)` lies at the star's rim on more than
    ``fraction`` of its lines (:func:`lines_at_rim`, :func:`mostly_at_rim`): the DP found no
    edge there.

    Example:
        >>> at_rim(np.array([[10, 65, 65, 65], [10, 12, 11, 65]]), 65.0)
        array([ True, False])
    """
    radii = np.asarray(radii, dtype=np.float64)
    return mostly_at_rim(lines_at_rim(radii, star_radius, tolerance=tolerance), radii.shape[-1],
                         fraction=fraction)


def training_fell(images_at_rim: int, n_images: int, *,
                  fraction: float = RIM_IMAGE_FRACTION) -> bool:
    """Whether a validation with ``images_at_rim`` of its ``n_images`` images at the rim (their
    contour lies at the rim, :func:`at_rim`; the validation event's ``at_rim``) says the
    training fell to contours that fill the star: more than ``fraction`` of the images are.

    Example:
        >>> training_fell(10, 18), training_fell(9, 18)
        (True, False)
    """
    return images_at_rim > fraction * n_images


@document
@dataclass(frozen=True)
class StarConfig:
    """Star pattern and DP settings (thesis §5.4 defaults in brackets).

    Each setting is checked by its owner: ``n_lines``, ``n_points`` and ``radius`` by
    ``star_points``, ``delta``, ``smoothness`` and ``smoothing`` by ``StarDP`` (so ``delta=0``, a circle, and
    ``smoothing=0`` or ``1``, none, are accepted as ``StarDP`` accepts them); the config adds
    only what involves two settings: an odd ``smoothing`` width must not exceed ``n_lines``.
    """

    n_lines: int = option(25, "star lines N", thesis="25", metavar="N", high=360)
    n_points: int = option(65, "points per line M", thesis="65", metavar="M", high=1024)
    radius: float = option(65.0, "star radius in pixels (covers any LV after centre jitter; at "
                           "most 4 crop sides)", thesis="65", metavar="PX", high=4 * CROP_SIZE)
    delta: int = option(1, "DP smoothness delta, the largest index change between neighbouring "
                        "lines", thesis="1", metavar="D")
    smoothness: float = option(0.0, "DP smoothness penalty lambda: the cost of each index step "
                               "between neighbouring lines, in units of the DP's cost (0: none, "
                               "the thesis' DP; with --learn-smoothness the initial value)",
                               thesis="0", metavar="LAM", low=0.0)
    smoothing: int | None = option(None, "odd width of the moving average on the DP indices "
                                   "(None: the odd integer nearest N/4; 0 or 1: none)",
                                   thesis="~N/4", metavar="W")
    interpolation: str = option("nearest", "warp interpolation of the output map",
                                thesis="nearest", choices=INTERPOLATIONS)
    pool: int = option(1, "ES-lo: the DP solves the warped map averaged over blocks of F "
                       "points along each line (ceil(M/F) values per line) and linearly "
                       "interpolated back to M points, so the estimator sees N x ceil(M/F) "
                       "values (thesis ES-lo: a U-Net without input padding, its smaller output "
                       "upsampled); 1: none; edpcnn-es only", thesis="1 (ES-lo: lower)",
                       metavar="F")
    edge_offset: float = option(0.5, "where the DP contour is drawn into a mask (inference, and "
                                "the teacher's masks with --unlabelled), in point steps beyond "
                                "the chosen points (on each line the last point inside the LV, "
                                "as in training): 0.5, the LV's edge between it and the first "
                                "point outside; 0, through the chosen points (a mask smaller by "
                                "about half a step all round)",
                                thesis="0 (through the chosen point)", metavar="O", low=0.0,
                                high=1.0)

    def __post_init__(self) -> None:
        import torch  # here: the options are read without starting torch

        check_fields(self)  # types and bounds (the sizes: one bad value must not allocate GBs)
        self.points(torch.zeros(1, 2))  # star_points checks n_lines, n_points and radius
        self.dp()  # StarDP checks delta and smoothing
        one_of("interpolation", self.interpolation, INTERPOLATIONS)
        int_at_least("pool", self.pool, 1)
        if self.smoothing is not None and self.smoothing > self.n_lines:
            raise ValueError(
                f"smoothing must be None or an odd width <= n_lines={self.n_lines}; "
                f"got {self.smoothing}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for ``config.json``)."""
        return asdict(self)

    @property
    def smoothing_width(self) -> int:
        """The width of the moving average the DP applies on these lines: ``smoothing``, or for
        ``None`` the odd integer nearest :math:`N/4` (1: none, as ``smoothing`` 0 or 1)."""
        from diffbypass_stardp import StarDP

        return StarDP(smoothing=self.smoothing).smoothing_width(self.n_lines) or 1

    def learned(self, log_smoothness: Tensor | None) -> StarConfig:
        r"""This star with a learned smoothness penalty, ``smoothness`` =
        :math:`\exp` ``log_smoothness`` (``--learn-smoothness``); ``None``: this star itself."""
        if log_smoothness is None:
            return self
        return replace(self, smoothness=float(log_smoothness.detach().exp()))

    def points(self, centers: Tensor, angles: Tensor | None = None) -> Tensor:
        r"""Star points :math:`(B, N, M, 2)` around ``centers`` :math:`(B, 2)`, rotated by ``angles``."""
        import torch

        from diffbypass_stardp import star_points

        return star_points(
            centers.to(torch.float32), n_lines=self.n_lines, n_points=self.n_points,
            radius=float(self.radius), angle=0.0 if angles is None else angles.to(torch.float32),
        )  # fmt: skip

    def dp(self, output: str = "float") -> StarDP | PooledDP:
        """The black box with these settings: the DP on the bypass input :meth:`reduce` makes."""
        from lvseg.star_dp import STARDP, PooledDP

        dp = STARDP.blackbox(delta=self.delta, smoothing=self.smoothing, output=output,
                             lam=self.smoothness)
        return dp if self.pool == 1 else PooledDP(dp, self.n_points)

    def reduce(self, warped: Tensor) -> Tensor:
        r"""What the DP's bypass sees: ``warped`` :math:`(B, N, M)` itself, or for ``pool``
        :math:`F > 1` its averages over blocks of :math:`F` points along each line,
        :math:`(B, N, \lceil M/F \rceil)` (differentiable; :meth:`dp` interpolates them back)."""
        import torch.nn.functional as F

        if self.pool == 1:
            return warped
        b, n, m = warped.shape
        pooled = F.adaptive_avg_pool1d(warped.reshape(b * n, 1, m), -(-m // self.pool))
        return pooled.reshape(b, n, -1)
