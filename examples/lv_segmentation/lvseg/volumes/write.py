"""Writing a volume's results: the LV mask as NIfTI, a montage PNG, the volumes as JSON and CSV.

For an input ``NAME``, :func:`write_volume_results` writes into the output folder::

    NAME_lv.nii.gz            LV mask, uint8, the input's affine and header (label: see below)
    NAME_montage_fFF.png      slices of frame FF with the predicted contour (ED and ES, else
                              the first frame)
    NAME_volumes.json         volume per frame (mL), EDV/ESV/EF when ED/ES are known, the
                              slices without LV and the plausibility warnings
    NAME_volumes.csv          one row per frame: frame, index, phase, volume_ml

**Label value.** The mask holds 0 (background) and :data:`MASK_LABEL` = 1 (LV cavity), a binary
mask every viewer shows as foreground; pass ``label=3`` (:data:`lvseg.data.acdc.LV_LABEL`) for
files that line up with ACDC's ``_gt`` label maps.

Every file is written atomically (:mod:`lvseg.rundir`): a full disk leaves no truncated file, a
link at a target path is replaced, never followed, and an output folder that is itself a link is
refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from lvseg.rundir import atomic_write_bytes, atomic_write_with
from lvseg.volumes.figures import montage_figure
from lvseg.volumes.io import Volume
from lvseg.volumes.patient import CardiacCase
from lvseg.volumes.segment import VolumeSegmentation

__all__ = ["MASK_LABEL", "volume_record", "write_mask_nifti", "write_volume_results"]

#: Value of the LV voxels in the written masks (0 elsewhere).
MASK_LABEL = 1


def write_mask_nifti(path: str | os.PathLike[str], volume: Volume, masks: np.ndarray, *,
                     label: int = MASK_LABEL) -> None:
    """Write LV masks :math:`(T, Z, H, W)` as a uint8 NIfTI in ``volume``'s geometry.

    The array goes back to the input's axis order (``(X, Y, Z)``, or ``(X, Y, Z, T)`` for a
    cine); the affine and header are the input's (a DICOM series gets its computed affine).

    Raises:
        ValueError: if ``path`` does not end in ``.nii`` or ``.nii.gz``, the masks' shape differs
            from the volume's or ``label`` is not 1..255.
        OSError: ``cannot write PATH: REASON ...`` (:func:`~lvseg.rundir.atomic_write_with`);
            no partial file is left.
    """
    import nibabel as nib

    if not str(path).endswith((".nii", ".nii.gz")):  # nibabel picks the format from it
        raise ValueError(f"path must end in .nii or .nii.gz; got {str(path)!r}")
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != volume.array.shape:
        raise ValueError(f"masks must have the volume's shape {volume.array.shape}; got "
                         f"{masks.shape}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= label <= 255:
        raise ValueError(f"label must be an integer in 1..255; got {label!r}")
    data = masks.transpose(2, 3, 1, 0).astype(np.uint8) * np.uint8(label)  # (X, Y, Z, T)
    if data.shape[-1] == 1:
        data = data[..., 0]
    header = None
    if volume.header is not None:
        header = volume.header.copy()
        header.set_data_dtype(np.uint8)
        header.set_slope_inter(1.0, 0.0)
    image = nib.Nifti1Image(data, volume.affine if volume.affine is not None else np.eye(4),
                            header=header)
    if header is None:  # no input header: the zooms come from the volume, not the affine
        image.header.set_zooms((volume.spacing[1], volume.spacing[2], volume.spacing[0])
                               + ((1.0,) if data.ndim == 4 else ()))
    image.header.set_data_dtype(np.uint8)
    image.header["cal_min"], image.header["cal_max"] = 0, label
    # the temporary file keeps the .nii(.gz) suffix, from which nibabel picks the format
    atomic_write_with(path, lambda tmp: nib.save(image, tmp))


def volume_record(volume: Volume, result: VolumeSegmentation,
                  case: CardiacCase | None = None) -> dict[str, Any]:
    """The JSON record of one volume's result (module docstring); ``nan`` becomes ``None``."""
    ed = case.ed if case is not None else None
    es = case.es if case is not None else None
    phase = {ed: "ED", es: "ES"} if ed is not None else {}
    record: dict[str, Any] = {
        "source": volume.source,
        "patient": case.patient_id if case is not None else None,
        "spacing_mm": list(volume.spacing),
        "voxel_ml": volume.voxel_ml,
        "frames": [{"frame": int(number), "index": t, "phase": phase.get(t),
                    "volume_ml": float(result.volumes_ml[t])}
                   for t, number in enumerate(volume.frames)],
        "slices_without_lv": [{"frame": int(volume.frames[t]), "slice": z}
                              for t, z in result.no_lv],
        "warnings": list(result.warnings),
        "notes": list(volume.notes),
    }
    if ed is not None and es is not None:
        edv, esv, ef = result.phases(ed, es)
        record.update(edv_ml=edv, esv_ml=esv, ef=ef)
    return _finite(record)


def write_volume_results(out: str | os.PathLike[str], name: str, volume: Volume,
                         result: VolumeSegmentation, case: CardiacCase | None = None, *,
                         label: int = MASK_LABEL) -> list[Path]:
    """Write the files of the module docstring for one input into folder ``out``.

    Args:
        out: output folder (created; refused if it is a symbolic link).
        name: file-name stem for this input (distinct per input).
        volume: the input volume.
        result: its segmentation (:func:`~lvseg.volumes.segment_volume`).
        case: ED/ES frames and patient, when known.
        label: value of the LV voxels in the NIfTI mask.

    Returns:
        The paths written.

    Raises:
        ValueError: if ``out`` is a symbolic link or ``name`` holds a path separator.
    """
    folder = Path(out)
    if folder.is_symlink():
        raise ValueError(f"output folder {folder} is a symbolic link; lvseg never writes through "
                         "links: give a real folder")
    if not name or os.sep in name or (os.altsep and os.altsep in name) or name in (".", ".."):
        raise ValueError(f"name must be a plain file-name stem; got {name!r}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}_lv.nii.gz"]
    write_mask_nifti(paths[0], volume, result.masks, label=label)
    frames = [t for t in (case.ed, case.es)] if case is not None and case.has_phases else [0]
    for t in dict.fromkeys(frames):  # ED and ES, once each
        path = folder / f"{name}_montage_f{volume.frames[t]:02d}.png"
        truth = case.truth.get(t) if case is not None else None
        montage_figure(path, volume.array[t], result.masks[t], truth=truth,
                       title=f"{volume.source}, frame {volume.frames[t]}")
        paths.append(path)
    record = volume_record(volume, result, case)
    paths.append(folder / f"{name}_volumes.json")
    atomic_write_bytes(paths[-1], (json.dumps(record, indent=2) + "\n").encode())
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["frame", "index", "phase", "volume_ml"])
    for row in record["frames"]:
        writer.writerow([row["frame"], row["index"], row["phase"] or "",
                         f"{row['volume_ml']:.3f}"])
    paths.append(folder / f"{name}_volumes.csv")
    atomic_write_bytes(paths[-1], text.getvalue().encode())
    return paths


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (valid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
