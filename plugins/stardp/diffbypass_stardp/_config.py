"""The one place for the numba and threading settings of this plugin.

numba flags (:data:`JIT`):

* ``cache=True``: compiled kernels are written next to the module (``__pycache__``) and reused by
  later processes, so only the first run on a machine pays the compile time;
* ``fastmath=False``: the DP compares sums exactly; reassociation would change which of two tied
  contours wins and break the documented tie-breaking;
* ``nogil=True``: the kernel releases the GIL, so chunks of a batch run on several threads.

Threads (:data:`THREADS`, :data:`MIN_CHUNK`): a batch is split into chunks that run on a private
thread pool. This is used instead of ``numba.prange``: numba's default OpenMP layer loads a second
OpenMP runtime next to torch's, and its spinning workers slowed torch's CPU kernels (the
surrogate's training) 50-fold in our measurements on 2 cores, while the ``workqueue`` layer
aborts when two threads launch parallel kernels at once (a black box on a thread pool).
"""

from __future__ import annotations

from typing import Any

import numba

#: Flags of every numba kernel.
JIT: dict[str, Any] = {"nogil": True, "cache": True, "fastmath": False}

#: Threads that solve one batch: numba's ``NUMBA_NUM_THREADS`` (the CPU count unless set).
THREADS: int = int(numba.config.NUMBA_NUM_THREADS)

#: Batches smaller than two chunks of this many contours are solved in the calling thread.
MIN_CHUNK: int = 32

#: Memory budget (bytes) of one chunk of the torch DP (``dp_torch``, ``soft_dp``): a batch whose
#: estimated memory (:func:`~diffbypass_stardp.torch_dp_bytes` per contour) exceeds it is solved
#: in chunks, with identical results.
TORCH_CHUNK_BYTES: int = 256 * 2**20
