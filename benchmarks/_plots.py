"""The plots every benchmark draws alike: matplotlib on the Agg backend (:func:`pyplot`), medians
with their interquartile range (:func:`errorbar`, from :func:`benchmarks._harness.summary`) and
one dpi and layout for every PNG (:func:`save`). Importable from :mod:`benchmarks._harness` too.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["errorbar", "pyplot", "save"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def errorbar(ax: Any, xs: Sequence[float], stats: Sequence[dict[str, Any]], scale: float = 1.0,
             **kw: Any) -> None:  # fmt: skip
    """Medians with the interquartile range as error bars, from :func:`summary` dictionaries."""
    med = np.array([s["median"] for s in stats]) * scale
    low = med - np.array([s["q25"] for s in stats]) * scale
    high = np.array([s["q75"] for s in stats]) * scale - med
    ax.errorbar(xs, med, yerr=[low, high], marker="o", ms=4, capsize=3, **kw)


def save(fig: Any, path: Path, dpi: int = 110,
         rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> None:  # fmt: skip
    """Tight layout inside ``rect`` (room for a figure legend), save at ``dpi``, close.

    The saved area is cropped to what was drawn (``bbox_inches="tight"``), so a legend placed
    outside the axes is never clipped.
    """
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
