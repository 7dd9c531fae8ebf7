"""The curve arithmetic: the best validation Dice a run has reached within a budget of
training-step seconds or of DP (``fn``) evaluations.

A run's record holds ``step_seconds`` and ``fn_items`` (one value per iteration 1, 2, ...) and
``validations`` (``[iteration, dice]`` pairs). The cost of a validation point at iteration
:math:`i` is the sum over iterations :math:`1..i`; validation itself is not counted.
"""

from __future__ import annotations

import math
from itertools import accumulate
from typing import Any

#: The budgets: the key of a record's per-step costs, by axis name (wall seconds, DP
#: evaluations, CPU seconds).
AXES = {"seconds": "step_seconds", "evaluations": "fn_items",
        "cpu_seconds": "step_cpu_seconds"}


def curve(record: dict[str, Any], axis: str) -> list[tuple[float, float]]:
    """``(cumulative cost, Dice)`` at each validation of ``record``; ``axis``: one of
    :data:`AXES`."""
    costs = list(accumulate(record[AXES[axis]]))
    out = []
    for iteration, dice in record["validations"]:
        if not 1 <= iteration <= len(costs):
            raise ValueError(f"{record.get('key', 'a record')}: validation at iteration "
                             f"{iteration}, but the record has {len(costs)} steps")
        out.append((float(costs[iteration - 1]), float(dice)))
    return out


def total(record: dict[str, Any], axis: str) -> float:
    """The run's whole budget on ``axis``: every step's cost summed."""
    return float(sum(record[AXES[axis]]))


def best_within(points: list[tuple[float, float]], budget: float) -> float:
    """The best Dice among the points whose cost is at most ``budget``; NaN if none is."""
    reached = [dice for cost, dice in points if cost <= budget]
    return max(reached) if reached else math.nan


def best_curve(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The running best Dice at each point (what best.pt holds at that cost)."""
    return list(zip([c for c, _ in points], accumulate((d for _, d in points), max)))


def at_budgets(bypass: dict[str, Any], es: dict[str, Any]) -> dict[str, float]:
    """One seed's comparison: each method's best Dice within its own run and within the other
    method's budget on every axis of :data:`AXES` (a run shorter than the budget counts with
    its whole run: it was not trained longer)."""
    out = {"bypass_own": best_within(curve(bypass, "seconds"), math.inf),
           "es_own": best_within(curve(es, "seconds"), math.inf)}
    for axis in AXES:
        out[f"es_at_bypass_{axis}"] = best_within(curve(es, axis), total(bypass, axis))
        out[f"bypass_at_es_{axis}"] = best_within(curve(bypass, axis), total(es, axis))
    return out
