"""diffbypass-stardp: star-pattern dynamic programming (EDPCNN) as a diffbypass plugin.

The pipeline of Nguyen (2019): an object-probability map is sampled on a star pattern around a
centre (:func:`star_points`, :func:`warp`), an exact closed-contour DP picks one point per
radial line (:func:`dp_solve`), and the indices are smoothed (:func:`smooth_indices`). The DP
is not differentiable; inside a model it is wrapped as ::

    from diffbypass import Bypass, Surrogate
    from diffbypass_stardp import FIT_LOSS, StarDP, StarSurrogate

    dp = Bypass(StarDP(), Surrogate(StarSurrogate(), fit_loss=FIT_LOSS))

The plugin's record :data:`PLUGIN` (what ``diffbypass.plugins.load("stardp")`` returns) names
the black box :class:`StarDP`, the default surrogate :class:`StarSurrogate` and the fit loss
:data:`FIT_LOSS`; the module adds helpers for geometry, ground truth and a differentiable soft
DP.
"""

from __future__ import annotations

from diffbypass.plugins import Plugin

from diffbypass_stardp.blackbox import FIT_LOSS, StarDP
from diffbypass_stardp.contour import EDGE_OFFSET, contour_points, mask_to_indices, polygon_mask
from diffbypass_stardp.cost import radial_difference
from diffbypass_stardp.dp import dp_solve
from diffbypass_stardp.inference import StarSegments, segment_stars
from diffbypass_stardp.mask import star_mask
from diffbypass_stardp.semiring import HardMin, Semiring, SoftMin
from diffbypass_stardp.smoothing import default_smoothing_width, smooth_indices
from diffbypass_stardp.soft_dp import SoftDPResult, soft_dp
from diffbypass_stardp.star import star_points
from diffbypass_stardp.surrogate import LineSurrogate, StarSurrogate
from diffbypass_stardp.torch_dp import dp_torch, torch_dp_bytes
from diffbypass_stardp.warp import warp

__all__ = [
    "EDGE_OFFSET",
    "FIT_LOSS",
    "HardMin",
    "LineSurrogate",
    "PLUGIN",
    "Semiring",
    "SoftDPResult",
    "SoftMin",
    "StarDP",
    "StarSegments",
    "StarSurrogate",
    "contour_points",
    "default_smoothing_width",
    "dp_solve",
    "dp_torch",
    "mask_to_indices",
    "polygon_mask",
    "radial_difference",
    "segment_stars",
    "smooth_indices",
    "soft_dp",
    "star_mask",
    "star_points",
    "torch_dp_bytes",
    "warp",
]

__version__ = "0.1.0"

PLUGIN = Plugin(
    name="stardp", version=__version__, blackbox=StarDP, surrogate=StarSurrogate, fit_loss=FIT_LOSS
)
"""The plugin's record, returned by ``diffbypass.plugins.load("stardp")``."""
