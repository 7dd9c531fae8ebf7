r"""The black box on the star: the ``stardp`` plugin's DP, and :class:`PooledDP` for ES-lo.

The black box, :class:`~diffbypass_stardp.StarDP`, comes from the plugin through the plugin
contract (:data:`STARDP`): ``lvseg`` uses the DP as any user of a plugin would.
:meth:`lvseg.star.StarConfig.dp` builds it with a run's settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from diffbypass import plugins

if TYPE_CHECKING:
    from diffbypass_stardp import StarDP

__all__ = ["STARDP", "PooledDP"]

#: The star-DP plugin's record (black box, default surrogate, fit loss), through the plugin
#: contract.
STARDP = plugins.load("stardp")


class PooledDP:
    """``StarDP`` on a pooled warped map (:attr:`lvseg.star.StarConfig.pool`): linear
    interpolation of the :math:`L` values per line back to ``n_points``, then the DP (picklable,
    like ``StarDP``)."""

    def __init__(self, dp: StarDP, n_points: int) -> None:
        self.dp, self.n_points = dp, int(n_points)

    def __call__(self, pooled: Tensor | np.ndarray, lam: float | Tensor | None = None
                 ) -> Tensor | np.ndarray:
        """The DP's indices for ``pooled`` :math:`(B, N, L)`; NumPy in, NumPy out (as StarDP);
        ``lam``: the smoothness penalty (``None``: the DP's own)."""
        if isinstance(pooled, np.ndarray):
            return self(torch.from_numpy(pooled), lam).numpy()
        b, n, length = pooled.shape
        full = F.interpolate(pooled.reshape(b * n, 1, length), size=self.n_points, mode="linear",
                             align_corners=True)  # fmt: skip
        return self.dp(full.reshape(b, n, self.n_points), lam)
