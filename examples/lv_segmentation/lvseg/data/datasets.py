"""The datasets of the example, looked up by name in one table (:data:`DATASETS`).

A :class:`Dataset` holds the loader of a source, whether it is generated (no folder: a count and
a seed instead), where its data lie when no folder is given, and its default patient shares.
:func:`load_dataset` is the one entry point; nothing else branches on a dataset's name.

Example:
    >>> list(DATASETS)
    ['sunnybrook', 'acdc', 'synthetic']
    >>> slices, report = load_dataset("synthetic", n=8, size=64, seed=0)
    >>> print(report)
    synthetic(n=8, seed=0): 8 loaded, 0 skipped
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from diffbypass.validation import one_of
from lvseg.data.acdc import load_acdc
from lvseg.data.sunnybrook import bundled_sunnybrook, load_sunnybrook
from lvseg.data.synthetic import make_phantoms
from lvseg.data.types import LoadReport, Slice

__all__ = ["DATASETS", "Dataset", "load_dataset"]

Loaded = tuple[list[Slice], LoadReport]


@dataclass(frozen=True)
class Dataset:
    """One data source of the example.

    Attributes:
        name: the ``--data`` value.
        help: one phrase for ``lvseg train --help``.
        load: ``load(data_dir, **kwargs) -> (slices, report)``.
        fractions: default patient shares ``(train, val, test)`` of the split.
        generated: generated on the fly (takes ``n`` and ``seed``, never a folder).
        default_dir: the folder read when none is given (``None``: a folder is required).
        complete_labels: its label maps cover every slice, so a slice without the LV label has
            no LV, and ``load`` takes ``negatives=True`` to keep such slices
            (``--negatives``, :mod:`lvseg.negatives`).
    """

    name: str
    help: str
    load: Callable[..., Loaded]
    fractions: tuple[float, float, float]
    generated: bool = False
    default_dir: Callable[[], Path] | None = None
    complete_labels: bool = False

    def location(self, data_dir: str | os.PathLike[str] | None) -> str | None:
        """The folder the data come from (absolute), or ``None`` for generated data."""
        if self.generated:
            return None
        if data_dir is None:
            return None if self.default_dir is None else str(self.default_dir())
        return os.path.abspath(data_dir)


def _sunnybrook(data_dir: str | os.PathLike[str] | None, **kwargs: Any) -> Loaded:
    return load_sunnybrook(data_dir, **kwargs)


def _acdc(data_dir: str | os.PathLike[str] | None, **kwargs: Any) -> Loaded:
    if data_dir is None:
        raise ValueError("data_dir is required for 'acdc' (the ACDC data are not bundled)")
    return load_acdc(data_dir, **kwargs)


def _synthetic(data_dir: str | os.PathLike[str] | None, **kwargs: Any) -> Loaded:
    if data_dir is not None:
        raise ValueError(f"'synthetic' is generated and takes no data_dir; got {data_dir!r}")
    kwargs.setdefault("n", 256)
    slices = make_phantoms(**kwargs)
    report = LoadReport(f"synthetic(n={kwargs['n']}, seed={kwargs.get('seed', 0)})")
    report.add_loaded(len(slices))
    return slices, report


#: The datasets by name.
DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("sunnybrook", "Sunnybrook DICOMs (default folder: the bundled 3-patient sample)",
            _sunnybrook, (1 / 3, 1 / 3, 1 / 3), default_dir=bundled_sunnybrook),
    Dataset("acdc", "ACDC NIfTI volumes (the training/ folder; required)", _acdc,
            (0.8, 0.1, 0.1), complete_labels=True),
    Dataset("synthetic", "seeded phantoms (no folder)", _synthetic, (0.8, 0.1, 0.1),
            generated=True),
)}  # fmt: skip


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, **kwargs: Any
) -> Loaded:
    """Load a dataset by name.

    Args:
        name: a key of :data:`DATASETS`: ``"sunnybrook"`` (:func:`load_sunnybrook`; without
            ``data_dir`` the bundled sample), ``"acdc"`` (:func:`load_acdc`; ``data_dir``
            required) or ``"synthetic"`` (:func:`make_phantoms`; no ``data_dir``, ``n``
            defaults to 256).
        data_dir: dataset folder.
        **kwargs: passed on to the loader (e.g. ``n=1000, seed=3`` for ``"synthetic"``).

    Returns:
        ``(slices, report)``.

    Raises:
        ValueError: on an unknown name, a missing ``data_dir`` for ACDC, or a ``data_dir`` for
            ``"synthetic"``.
    """
    return DATASETS[one_of("name", name, tuple(DATASETS))].load(data_dir, **kwargs)
