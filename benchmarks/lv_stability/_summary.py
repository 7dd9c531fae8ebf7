"""The arithmetic of one run's validation curve: its best, its second half ("late") and its
largest drop between consecutive validations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def curve_summary(validations: Sequence[Sequence[float]], iterations: int) -> dict[str, Any]:
    """Best Dice, the late validations' mean, min and s.d., and the largest drop of a curve.

    Args:
        validations: ``[iteration, dice]`` pairs in the order of the run.
        iterations: the run's planned iterations; "late" is every validation at an iteration
            above ``iterations / 2``.

    Returns:
        ``best_dice`` and ``best_iteration`` (the first on ties, as ``best.pt``); ``late_n``,
        ``late_mean``, ``late_min`` and ``late_sd`` (sample s.d., ``None`` below two late
        validations; the three statistics ``None`` without any); ``largest_drop`` (the largest
        fall of the Dice from one validation to the next, ``0.0`` if it never falls, ``None``
        below two validations) and ``largest_drop_at`` (the iteration after that fall).

    Raises:
        ValueError: naming ``validations``, if it is empty or its iterations do not increase.

    Example:
        >>> s = curve_summary([[1, 0.5], [2, 0.8], [3, 0.4], [4, 0.6]], 4)
        >>> s["best_dice"], s["late_min"], s["largest_drop"], s["largest_drop_at"]
        (0.8, 0.4, 0.4, 3)
    """
    if not validations:
        raise ValueError("validations must hold at least one [iteration, dice] pair; got none")
    its = [int(i) for i, _ in validations]
    if any(b <= a for a, b in zip(its, its[1:])):
        raise ValueError(f"validations must come at increasing iterations; got {its}")
    dice = [float(d) for _, d in validations]
    best = max(range(len(dice)), key=lambda k: (dice[k], -k))
    late = [d for i, d in zip(its, dice) if i > iterations / 2]
    drops = [(a - b, i) for a, b, i in zip(dice, dice[1:], its[1:])]
    drop = max(drops, key=lambda t: t[0], default=None)
    return {"best_dice": dice[best], "best_iteration": its[best], "late_n": len(late),
            "late_mean": float(np.mean(late)) if late else None,
            "late_min": min(late) if late else None,
            "late_sd": float(np.std(late, ddof=1)) if len(late) > 1 else None,
            "largest_drop": None if drop is None else max(drop[0], 0.0),
            "largest_drop_at": None if drop is None or drop[0] <= 0 else drop[1]}  # fmt: skip


def mean_sd(values: Sequence[float | None], digits: int = 3) -> str:
    """``mean ± s.d. (n)`` over seeds (sample s.d.; ``–`` for one value); ``None`` or NaN values
    (a statistic a run does not have) are left out and counted.

    Example:
        >>> mean_sd([0.5, 0.7])
        '0.600 ± 0.141 (2)'
    """
    ok = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not ok:
        return f"– ({len(values)} without)"
    sd = f"{np.std(ok, ddof=1):.{digits}f}" if len(ok) > 1 else "–"
    missing = f", {len(values) - len(ok)} without" if len(ok) < len(values) else ""
    return f"{np.mean(ok):.{digits}f} ± {sd} ({len(ok)}{missing})"
