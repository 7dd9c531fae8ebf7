"""lvseg: left-ventricle segmentation of short-axis cardiac MRI with EDPCNN (diffbypass example).

Subpackages: :mod:`lvseg.data` (loaders for Sunnybrook, ACDC and synthetic phantoms,
preprocessing, patient splits).
"""

from __future__ import annotations

from lvseg import data

__all__ = ["data"]

__version__ = "0.1.0"
