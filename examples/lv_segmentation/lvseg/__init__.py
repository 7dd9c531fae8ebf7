"""lvseg: left-ventricle segmentation of short-axis cardiac MRI with EDPCNN (diffbypass example).

Subpackages: :mod:`lvseg.data` (loaders for Sunnybrook, ACDC and synthetic phantoms,
preprocessing, patient splits) and :mod:`lvseg.metrics` (Dice, Hausdorff distance and ASSD inside
the star's square, the thesis's evaluation protocol).
"""

from __future__ import annotations

from lvseg import data, metrics

__all__ = ["data", "metrics"]

__version__ = "0.1.0"
