"""The one place for numba compilation flags of this plugin.

* ``cache=True``: compiled kernels are written next to the module (``__pycache__``) and reused by
  later processes, so only the first run on a machine pays the compile time.
* ``fastmath=False``: the DP compares sums exactly; reassociation would change which of two tied
  contours wins and break the documented tie-breaking.
* ``nogil=True``: callers may run the black box on a thread pool.
"""

from __future__ import annotations

from typing import Any

#: Flags of the per-contour (serial) kernels.
JIT: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False}

#: Flags of the batch kernel, parallel over contours with ``numba.prange``.
JIT_PARALLEL: dict[str, Any] = {**JIT, "parallel": True}
