"""A cardiac case: a volume with its end-diastolic (ED) and end-systolic (ES) frames marked.

Three ways to get one:

- :func:`read_patient`: an ACDC-style patient folder::

      patientNNN/Info.cfg                     "ED: 1", "ES: 12", "NbFrame: 30", ... (Key: value)
      patientNNN/patientNNN_frameMM.nii.gz    3-D frame MM (1-based, as in Info.cfg)
      patientNNN/patientNNN_frameMM_gt.nii.gz its labels (3 = LV cavity, :data:`LV_LABEL`)
      patientNNN/patientNNN_4d.nii.gz         the whole cine (X, Y, Z, T), optional

- :func:`case_from_frames`: two 3-D volumes, the first marked ED, the second ES;
- :func:`case_from_volume`: any volume, with ED/ES frame indices given (or none known).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lvseg.data.acdc import LV_LABEL
from lvseg.volumes.cardiac import frame_index
from lvseg.volumes.io import Volume, read_nifti, read_volume

__all__ = ["LV_LABEL", "CardiacCase", "case_from_frames", "case_from_volume", "read_info",
           "read_patient"]

_FRAME = re.compile(r"^(patient\d+)_frame(\d+)(_gt)?\.nii(\.gz)?$")


@dataclass(frozen=True, eq=False)
class CardiacCase:
    """A volume with its ED and ES frames (when known) and any ground-truth LV masks.

    Args:
        patient_id: the patient (folder name, or the file name without suffixes).
        volume: the images, :math:`(T, Z, H, W)`.
        ed: index ``0 .. T-1`` of the end-diastolic frame, or ``None``.
        es: index of the end-systolic frame, or ``None``.
        truth: ground-truth LV masks ``{frame index: bool (Z, H, W)}`` (ACDC ``_gt`` files).
        info: the ``Info.cfg`` entries (strings), empty for other inputs.

    Raises:
        ValueError: naming the volume, if ``ed``/``es`` is out of range or only one is given, or
            a truth mask does not have the frame's shape.
    """

    patient_id: str
    volume: Volume
    ed: int | None = None
    es: int | None = None
    truth: dict[int, np.ndarray] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.volume.n_frames
        if (self.ed is None) != (self.es is None):
            raise ValueError(f"{self.volume.source}: give both ED and ES frames or neither; got "
                             f"ed={self.ed}, es={self.es}")
        for name, t in (("ed", self.ed), ("es", self.es)):
            if t is not None:
                try:
                    frame_index(name, t, n)
                except ValueError as error:
                    raise ValueError(f"{self.volume.source}: {error}") from None
        shape = self.volume.array.shape[1:]
        for t, mask in self.truth.items():
            if not 0 <= t < n or np.shape(mask) != shape:
                raise ValueError(f"{self.volume.source}: ground truth of frame index {t} must "
                                 f"have shape {shape} and t in [0, {n - 1}]; got "
                                 f"{np.shape(mask)}")

    @property
    def has_phases(self) -> bool:
        """Whether ED and ES are known (EDV, ESV and EF can be reported)."""
        return self.ed is not None


def read_info(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read an ACDC ``Info.cfg`` (``Key: value`` lines) and check its ``ED`` and ``ES``.

    Returns:
        ``{key: value}`` as strings; ``ED`` and ``ES`` are positive integers (1-based frames).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming the file, on a line without ``:`` or a missing or non-integer
            ``ED``/``ES``.

    Example:
        >>> import tempfile; p = Path(tempfile.mkdtemp()) / "Info.cfg"
        >>> _ = p.write_text("ED: 1\\nES: 12\\nGroup: DCM\\n")
        >>> read_info(p)
        {'ED': '1', 'ES': '12', 'Group': 'DCM'}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (an ACDC patient folder has Info.cfg "
                                "with its ED and ES frames)")
    info: dict[str, str] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{path}, line {number}: expected 'Key: value'; got {line!r}")
        info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        value = info.get(key)
        if value is None or not value.isdigit() or int(value) < 1:
            raise ValueError(f"{path}: {key} must be a frame number >= 1 (e.g. '{key}: 1'); "
                             f"got {value!r}")
    return info


def read_patient(folder: str | os.PathLike[str], *, cine: bool = True,
                 lv_label: int = LV_LABEL) -> CardiacCase:
    """Read an ACDC-style patient folder (module docstring).

    Args:
        folder: the ``patientNNN`` folder.
        cine: use ``patientNNN_4d.nii.gz`` when present (every frame, frame numbers 1 .. T);
            otherwise, or when absent, the volume holds the ED and ES frame files only.
        lv_label: label of the LV cavity in the ``_gt`` files.

    Returns:
        A :class:`CardiacCase` with ``ed``/``es`` from ``Info.cfg`` and the ``_gt`` masks of
        the frames in the volume; ``volume.frames`` holds ACDC's frame numbers.

    Raises:
        FileNotFoundError: if the folder, ``Info.cfg`` or the ED/ES frame files are missing.
        ValueError: naming the file, on unreadable or mismatched volumes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"patient folder {folder} does not exist")
    info = read_info(folder / "Info.cfg")
    ed_number, es_number = int(info["ED"]), int(info["ES"])
    files: dict[int, dict[str, Path]] = {}
    for path in folder.iterdir():
        match = _FRAME.match(path.name)
        if match and match.group(1) == folder.name:
            files.setdefault(int(match.group(2)), {})["gt" if match.group(3) else "image"] = path
    cine_path = next((folder / f"{folder.name}_4d{s}" for s in (".nii.gz", ".nii")
                      if (folder / f"{folder.name}_4d{s}").is_file()), None)
    if cine and cine_path is not None:
        read = read_nifti(cine_path)
        volume = Volume(read.array, read.spacing, read.source, read.affine, read.header,
                        frames=range(1, read.n_frames + 1))
        if max(ed_number, es_number) > volume.n_frames:
            raise ValueError(f"{folder / 'Info.cfg'}: ED {ed_number} / ES {es_number} beyond "
                             f"the {volume.n_frames} frames of {cine_path}")
    else:
        for number in (ed_number, es_number):
            if "image" not in files.get(number, {}):
                raise FileNotFoundError(f"{folder}: no {folder.name}_frame{number:02d}.nii.gz "
                                        f"(the ED/ES frame named in Info.cfg)")
        numbers = sorted({ed_number, es_number})
        volume = _stack([read_nifti(files[n]["image"]) for n in numbers], numbers, str(folder))
    index = {number: t for t, number in enumerate(volume.frames)}
    truth = {}
    for number, paths in sorted(files.items()):
        if "gt" in paths and number in index:
            labels = read_nifti(paths["gt"])
            if labels.array.shape[1:] != volume.array.shape[1:]:
                raise ValueError(f"{paths['gt']}: shape {labels.array.shape[1:]} differs from "
                                 f"the image's {volume.array.shape[1:]}")
            truth[index[number]] = np.rint(labels.array[0]) == lv_label
    return CardiacCase(folder.name, volume, index[ed_number], index[es_number], truth, info)


def case_from_frames(ed: str | os.PathLike[str], es: str | os.PathLike[str],
                     patient_id: str | None = None) -> CardiacCase:
    """Two 3-D volumes (NIfTI or DICOM folders): the first is ED, the second ES.

    Raises:
        ValueError: naming the files, if either is not a single frame or they differ in shape
            or spacing.
    """
    volumes = [read_volume(ed), read_volume(es)]
    volume = _stack(volumes, [0, 1], f"{volumes[0].source} + {volumes[1].source}",
                    role="an ED or ES input", fix=" (give a 4-D cine with its ED/ES indices)")
    return CardiacCase(patient_id or _stem(ed), volume, 0, 1)


def case_from_volume(path: str | os.PathLike[str], ed: int | None = None, es: int | None = None,
                     patient_id: str | None = None) -> CardiacCase:
    """Any volume (:func:`~lvseg.volumes.read_volume`) with 0-based ED/ES frame indices or none."""
    return CardiacCase(patient_id or _stem(path), read_volume(path), ed, es)


def _stem(path: str | os.PathLike[str]) -> str:
    name = Path(path).name
    return re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE)


def _stack(volumes: list[Volume], numbers: list[int], source: str, *,
           role: str = "a frame file", fix: str = "") -> Volume:
    """One volume of the frames ``numbers`` from single-frame ``volumes`` of one shape and
    spacing; ``role`` and ``fix`` word the error for an input of several frames."""
    first = volumes[0]
    for other in volumes:
        if other.n_frames != 1:
            raise ValueError(f"{other.source}: {role} must be one 3-D frame; got "
                             f"{other.n_frames} frames{fix}")
        if other.array.shape[1:] != first.array.shape[1:] or not np.allclose(
                other.spacing, first.spacing, rtol=1e-4):
            raise ValueError(f"{other.source}: shape {other.array.shape[1:]} / spacing "
                             f"{other.spacing} differ from {first.source}'s "
                             f"{first.array.shape[1:]} / {first.spacing}")
    if len(numbers) == 1 or numbers[0] == numbers[-1]:
        volumes, numbers = volumes[:1], numbers[:1]
    return Volume(np.concatenate([v.array[:1] for v in volumes]), first.spacing, source,
                  first.affine, first.header, frames=numbers)
