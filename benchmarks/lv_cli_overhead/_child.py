"""``lvseg`` itself (:func:`lvseg.cli.main` with the given arguments), with CPU-time clocks.

The study runs ``python -m benchmarks.lv_cli_overhead._child train ...`` instead of ``python -m
lvseg.cli train ...``: the same command, plus the process CPU time (``time.process_time``) spent
in ``Trainer.fit`` and in ``Trainer.step``, written as JSON to the file named by
``$LV_CLI_CLOCKS``. These clocks leave out the start-up and are much less moved by other programs
than wall time. ``OMP_WAIT_POLICY`` must already be set in the environment (torch is imported
here before ``main`` could set it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lvseg import train
from lvseg.cli import main

CLOCKS = {"fit_cpu": 0.0, "step_cpu": 0.0}
_fit, _step = train.Trainer.fit, train.Trainer.step


def _timed(method: Any, key: str) -> Any:
    def wrapper(self: train.Trainer) -> Any:
        start = time.process_time()
        try:
            return method(self)
        finally:
            CLOCKS[key] += time.process_time() - start

    return wrapper


if __name__ == "__main__":
    train.Trainer.fit = _timed(_fit, "fit_cpu")  # type: ignore[method-assign]
    train.Trainer.step = _timed(_step, "step_cpu")  # type: ignore[method-assign]
    code = main(sys.argv[1:])
    Path(os.environ["LV_CLI_CLOCKS"]).write_text(json.dumps(CLOCKS))
    raise SystemExit(code)
