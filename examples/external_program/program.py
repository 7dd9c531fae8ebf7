"""An external program as a black box: one ``subprocess`` run per batch, inputs on stdin.

:func:`build` compiles ``relax.c`` with the system's C compiler into a temporary folder, or falls
back to the same program in Python (``relax.py``) where there is no compiler.
:class:`ExternalProgram` is the black-box function ``fn(x)`` that ``diffbypass.Bypass`` calls: it
writes the batch ``x`` of shape ``(B, d)`` as text to the program's stdin and reads ``(B, d)``
numbers back. It is a plain picklable object (a command line and a timeout), so thread pools,
process pools and Dask workers can all run it; on a real cluster the command must exist on every
worker (a shared file system, or a container image).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def build(prefer: str = "c") -> list[str]:
    """The command that runs ``relax``: the compiled C program, or ``python relax.py``.

    The compiled program lives in a ``relax_*`` temporary folder that is removed when this
    process exits.

    Args:
        prefer: ``"c"`` to compile ``relax.c`` when ``cc``/``gcc`` exists, ``"python"`` for the
            Python version.
    """
    if prefer not in ("c", "python"):
        raise ValueError(f"prefer must be 'c' or 'python'; got {prefer!r}")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if prefer == "c" and compiler:
        folder = tempfile.mkdtemp(prefix="relax_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        exe = Path(folder) / "relax"
        cmd = [compiler, "-O2", "-o", str(exe), str(HERE / "relax.c"), "-lm"]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            return [str(exe)]
        shutil.rmtree(folder, ignore_errors=True)
    return [sys.executable, str(HERE / "relax.py")]


class ExternalProgram:
    """``fn(x)`` or ``fn(x, params)``: run the program on the rows of ``x``, return its output.

    Args:
        command: the program, as :func:`build` returns it.
        iterations: solver iterations per row (the cost of one evaluation grows with it).
        timeout: seconds one run may take before ``subprocess.TimeoutExpired`` is raised.
        levels: the output is quantised to steps of ``1 / levels``.

    ``params``, when given, holds the program's physical parameters ``(coupling, diffusion)``
    (a tensor or array of 2 numbers), passed on its command line; without it the program's
    defaults (0.3, 0) apply. One run evaluates every row of ``x`` with the same parameters, so
    in a ``Bypass`` they are a *shared* argument: ``Bypass(program, est, shared=("params",))``.
    """

    def __init__(self, command: list[str], iterations: int = 1000, timeout: float = 60.0,
                 levels: int = 16):  # fmt: skip
        self.command, self.iterations, self.timeout = list(command), int(iterations), timeout
        self.levels = int(levels)

    def __call__(self, x: object, params: object = None) -> np.ndarray:
        rows = np.asarray(x, dtype=np.float64)
        n, d = rows.shape
        text = f"{n} {d}\n" + "\n".join(" ".join(f"{v:.9g}" for v in row) for row in rows) + "\n"
        extra = []
        if params is not None:
            values = np.asarray(params, dtype=np.float64).reshape(-1)
            if values.shape != (2,):
                raise ValueError(f"params must hold 2 numbers (coupling, diffusion); got {values.shape}")
            extra = [f"{v:.9g}" for v in values]
        if params is not None or self.levels != 16:
            extra = (extra or ["0.3", "0"]) + [str(self.levels)]
        proc = subprocess.run([*self.command, str(self.iterations), *extra], input=text,
                              capture_output=True, text=True, timeout=self.timeout)  # fmt: skip
        if proc.returncode:
            raise RuntimeError(f"{self.command[-1]} exited with {proc.returncode}: {proc.stderr}")
        return np.array(proc.stdout.split(), dtype=np.float32).reshape(n, d)

    def __repr__(self) -> str:
        return f"ExternalProgram({Path(self.command[-1]).name}, iterations={self.iterations})"
