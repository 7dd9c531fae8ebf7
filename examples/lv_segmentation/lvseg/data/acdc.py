"""Loader for the ACDC challenge layout (NIfTI volumes with label maps), read with nibabel.

Layout (the ACDC ``training/`` folder)::

    <data_dir>/patientNNN/patientNNN_frameMM.nii.gz      short-axis volume (X, Y, Z)
    <data_dir>/patientNNN/patientNNN_frameMM_gt.nii.gz   labels: 0 background, 1 RV, 2 myocardium,
                                                         3 LV cavity

ACDC's download holds ``training/`` and ``testing/`` folders of patients; a ``data_dir`` above
them is refused with a hint naming the subfolder (:func:`subfolder_hint`; ``lvseg predict``
given such a folder as one patient: :func:`patient_hint`). Uncompressed ``.nii``
works too; other files (``Info.cfg``, the 4-D cine) are not read. Every
short-axis position ``z`` of every annotated frame becomes one :class:`~lvseg.data.Slice` with
``image = volume[:, :, z]`` (no transpose: row = voxel axis 0, column = axis 1) and spacing
``(zooms[0], zooms[1])`` from the header. Slices whose label map has no LV are dropped and
counted under :data:`REASON_NO_LV`, as in the thesis protocol; with ``negatives=True`` they are
kept instead, with an empty mask, as the negatives of a locator (:mod:`lvseg.negatives`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from lvseg.data.readers import read_nifti_file
from lvseg.data.types import LoadReport, Slice, positive_sizes

__all__ = [
    "LV_LABEL",
    "REASON_EMPTY_PATIENT",
    "REASON_FRAME_WITHOUT_GT",
    "REASON_GT_WITHOUT_FRAME",
    "REASON_NO_LV",
    "REASON_SHAPE_MISMATCH",
    "REASON_UNREADABLE_NIFTI",
    "load_acdc",
    "patient_folders",
    "patient_hint",
    "subfolder_hint",
]

LV_LABEL = 3
"""ACDC label of the LV cavity (blood pool)."""
REASON_FRAME_WITHOUT_GT = "frame_without_ground_truth"
"""A frame volume without its ``_gt`` label map: not annotated (not read)."""
REASON_GT_WITHOUT_FRAME = "ground_truth_without_frame"
"""A ``_gt`` label map whose frame volume is missing."""
REASON_UNREADABLE_NIFTI = "unreadable_nifti"
"""The frame or its label map cannot be read as a 3-D NIfTI volume with a valid spacing."""
REASON_SHAPE_MISMATCH = "shape_mismatch"
"""The frame and its label map differ in shape."""
REASON_EMPTY_PATIENT = "patient_without_frames"
"""A ``patientNNN`` folder without any frame file."""
REASON_NO_LV = "no_lv"
"""A short-axis slice whose label map has no LV pixel."""

_LAYOUT = "expected patientNNN/patientNNN_frameMM.nii.gz with patientNNN_frameMM_gt.nii.gz"
_PATIENT = re.compile(r"^patient\d+$")
#: The subfolders of ACDC's download, suggested first (then the others, most patients first).
_DOWNLOAD = ("training", "testing")
_FRAME = re.compile(r"^(patient\d+)_frame(\d+)(_gt)?\.nii(\.gz)?$")


def load_acdc(
    data_dir: str | os.PathLike[str], *, lv_label: int = LV_LABEL, negatives: bool = False
) -> tuple[list[Slice], LoadReport]:
    """Load every short-axis slice with an LV from the annotated ACDC frames.

    Args:
        data_dir: folder holding the ``patientNNN`` folders (module docstring).
        lv_label: label value of the LV blood pool in the ``_gt`` maps.
        negatives: also keep (and count as loaded) the slices whose label map has no LV, with an
            empty mask, where their frame has a slice with LV; a frame without any LV still
            counts its slices under :data:`REASON_NO_LV`.

    Returns:
        ``(slices, report)``: slices ordered by patient, frame and ``z``; ``patient_id`` is the
        folder name, ``source`` is ``<frame path>#z=<z>``, ``extras`` is
        ``{"frame": int, "z": int, "n_z": int, "labels": (H, W) uint8 label map}``; a slice
        without LV (``negatives``) adds ``"lv_z"``, the nearest ``z`` of its frame with LV (the
        lower one on a tie), and ``"lv_centre"``, that slice's LV centre of mass :math:`(x, y)`
        in pixels (the locator looks there, :mod:`lvseg.locate`).

    Raises:
        FileNotFoundError: if ``data_dir`` does not exist.
        ValueError: if it holds no ``patientNNN`` folder.

    Example:
        >>> slices, report = load_acdc("path/to/ACDC/training")  # doctest: +SKIP
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"ACDC data directory {root} does not exist; {_LAYOUT}")
    patients = patient_folders(root)
    if not patients:
        raise ValueError(f"{root} holds no patientNNN folder; {_LAYOUT}{subfolder_hint(root)}")
    report = LoadReport(str(root))
    slices: list[Slice] = []
    for patient_dir in patients:
        frames: dict[int, dict[str, Path]] = {}
        for path in sorted(patient_dir.iterdir()):
            match = _FRAME.match(path.name)
            if match is not None and match.group(1) == patient_dir.name:
                kind = "gt" if match.group(3) else "image"
                frames.setdefault(int(match.group(2)), {})[kind] = path
        if not frames:
            report.skip(REASON_EMPTY_PATIENT, str(patient_dir),
                        f"{patient_dir}: no patientNNN_frameMM.nii(.gz) file")
        for frame, paths in sorted(frames.items()):
            if "gt" not in paths:
                report.skip(REASON_FRAME_WITHOUT_GT, str(paths["image"]),
                            f"{paths['image']}: no ground truth {patient_dir.name}_frame"
                            f"{frame:02d}_gt.nii.gz (not annotated)")
            elif "image" not in paths:
                report.skip(REASON_GT_WITHOUT_FRAME, str(paths["gt"]),
                            f"{paths['gt']}: no image {patient_dir.name}_frame{frame:02d}.nii.gz")
            else:
                slices.extend(_load_frame(paths["image"], paths["gt"], patient_dir.name,
                                          frame, lv_label, report, negatives))
    return slices, report


def patient_folders(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``patientNNN`` folders directly in ``folder``, sorted by name (none when ``folder``
    is not a readable folder)."""
    try:
        return sorted(p for p in Path(folder).iterdir() if p.is_dir() and _PATIENT.match(p.name))
    except OSError:
        return []


def _subfolders_with_patients(folder: Path) -> list[tuple[Path, int]]:
    """The direct subfolders of ``folder`` that hold ``patientNNN`` folders, with their counts:
    ``training/`` first, then ``testing/``, then the others, most patients first."""
    try:
        subfolders = [p for p in folder.iterdir() if p.is_dir()]
    except OSError:
        return []
    counted = [(sub, len(patient_folders(sub))) for sub in subfolders]
    return sorted(((sub, n) for sub, n in counted if n),
                  key=lambda f: (_DOWNLOAD.index(f[0].name) if f[0].name in _DOWNLOAD
                                 else len(_DOWNLOAD), -f[1], f[0].name))


def _patients(n: int) -> str:
    return f"{n} patient folder{'s' * (n != 1)}"


def subfolder_hint(folder: str | os.PathLike[str]) -> str:
    """The hint to add to "``folder`` holds no patient folder": its direct subfolders that do hold
    ``patientNNN`` folders (:func:`patient_folders`), and the ``--data-dir`` to give instead
    (``training/`` first, then ``testing/``, then the subfolder with the most patients); ``""``
    when there is none.

    Example:
        >>> import tempfile; root = Path(tempfile.mkdtemp())
        >>> for name in ("training/patient001", "training/patient002", "other/patient101"):
        ...     (root / name).mkdir(parents=True)
        >>> print(subfolder_hint(root))  # doctest: +ELLIPSIS
        ; its subfolders training/ (2 patient folders) and other/ (1) hold patient folders: ...
        >>> subfolder_hint(root).endswith(f"did you mean --data-dir {root / 'training'}?")
        True
    """
    found = _subfolders_with_patients(Path(folder))
    if not found:
        return ""
    (best, n), *others = found
    if not others:
        said = f"its subfolder {best.name}/ holds {_patients(n)}"
    else:
        listed = [f"{best.name}/ ({_patients(n)})"] + [f"{sub.name}/ ({k})" for sub, k in others]
        said = f"its subfolders {', '.join(listed[:-1])} and {listed[-1]} hold patient folders"
    return f"; {said}: did you mean --data-dir {best}?"


def patient_hint(folder: str | os.PathLike[str]) -> str:
    """The hint to add when ``folder`` was given as one patient (``lvseg predict``'s inputs) but
    is a dataset: the ``patientNNN`` folders it holds, directly or in a subfolder (the one
    :func:`subfolder_hint` suggests), and one of them to give instead; ``""`` when there is none.

    Example:
        >>> import tempfile; root = Path(tempfile.mkdtemp())
        >>> for name in ("training/patient001", "training/patient002"):
        ...     (root / name).mkdir(parents=True)
        >>> print(patient_hint(root / "training"))  # doctest: +ELLIPSIS
        ; it holds 2 patient folders: give one or more of them, e.g. .../training/patient001
        >>> print(patient_hint(root))  # doctest: +ELLIPSIS
        ; its subfolder training/ holds 2 patient folders: give one or more ... e.g. .../patient001
    """
    folder = Path(folder)
    patients = patient_folders(folder)
    if patients:
        said = f"it holds {_patients(len(patients))}"
    else:
        found = _subfolders_with_patients(folder)
        if not found:
            return ""
        (sub, n), *_ = found
        said, patients = f"its subfolder {sub.name}/ holds {_patients(n)}", patient_folders(sub)
    return f"; {said}: give one or more of them, e.g. {patients[0]}"


def _read_volume(path: Path, labels: bool) -> tuple[np.ndarray, tuple[float, float]]:
    nifti = read_nifti_file(path, ndims=(2, 3), labels=labels)
    spacing = positive_sizes(nifti.zooms[:2], 2)
    if spacing is None:
        raise ValueError(f"{path}: header pixel spacing must be two positive numbers; got "
                         f"{nifti.zooms[:2]}")
    data = nifti.array
    return (data[:, :, None] if data.ndim == 2 else data), spacing


def _load_frame(
    image_path: Path, gt_path: Path, patient_id: str, frame: int, lv_label: int,
    report: LoadReport, negatives: bool = False,
) -> list[Slice]:
    try:
        volume, spacing = _read_volume(image_path, labels=False)
        labels, _ = _read_volume(gt_path, labels=True)
    except ValueError as err:  # read_nifti_file names the file
        report.skip(REASON_UNREADABLE_NIFTI, str(image_path),
                    f"{image_path}: unreadable NIfTI pair ({err})")
        return []
    if volume.shape != labels.shape:
        report.skip(REASON_SHAPE_MISMATCH, str(image_path),
                    f"{image_path}: image shape {volume.shape} differs from ground truth shape "
                    f"{labels.shape}")
        return []
    slices = []
    n_z = volume.shape[2]
    with_lv = np.flatnonzero((labels == lv_label).any(axis=(0, 1))) if negatives else None
    for z in range(n_z):
        mask = labels[:, :, z] == lv_label
        item = f"{image_path}#z={z}"
        extras = {"frame": frame, "z": z, "n_z": n_z,
                  "labels": labels[:, :, z].clip(0, 255).astype(np.uint8)}
        if not mask.any():
            if with_lv is None or not with_lv.size:
                report.skip(REASON_NO_LV, item, f"{item}: no pixel with LV label {lv_label}")
                continue
            lv_z = int(with_lv[np.argmin(np.abs(with_lv - z))])  # argmin: the lower on a tie
            rows, cols = np.nonzero(labels[:, :, lv_z] == lv_label)
            extras.update(lv_z=lv_z, lv_centre=(float(cols.mean()), float(rows.mean())))
        slices.append(Slice(
            image=volume[:, :, z],
            mask=mask,
            spacing=spacing,
            patient_id=patient_id,
            source=item,
            extras=extras,
        ))
        report.add_loaded()
    return slices
