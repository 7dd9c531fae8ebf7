"""What the CLI calls: predict volumes, and score patients by the challenge's protocol.

Both take any :class:`~lvseg.volumes.SliceSegmenter`, so a trained run (centre-free), the
U-Net alone (thresholded, :func:`~lvseg.volumes.largest_component`) or a test oracle plug in
the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from lvseg.data.acdc import patient_hint
from lvseg.rundir import atomic_write_bytes
from lvseg.volumes.figures import bland_altman_figure
from lvseg.volumes.patient import CardiacCase, case_from_volume, read_patient
from lvseg.volumes.protocol import score_case, summarize_cases
from lvseg.volumes.segment import SliceSegmenter, segment_volume
from lvseg.volumes.write import MASK_LABEL, _finite, write_volume_results

__all__ = ["evaluate_volumes", "input_case", "predict_volumes"]


def input_case(path: str | os.PathLike[str]) -> CardiacCase:
    """The case of one ``lvseg predict`` input: an ACDC patient folder (it has ``Info.cfg``),
    a NIfTI file or a DICOM series folder (no ED/ES known).

    Raises:
        FileNotFoundError, ValueError: from the readers, naming the file; for a folder of
            patient folders (or above one), with a hint naming one
            (:func:`lvseg.data.acdc.patient_hint`).
    """
    path = Path(path)
    if path.is_dir() and (path / "Info.cfg").is_file():
        return read_patient(path)
    try:
        return case_from_volume(path)
    except ValueError as error:
        hint = patient_hint(path) if path.is_dir() else ""
        if not hint:
            raise
        raise ValueError(f"{error}{hint}") from None


def predict_volumes(paths: Sequence[str | os.PathLike[str]], segmenter: SliceSegmenter,
                    out: str | os.PathLike[str], *, label: int = MASK_LABEL
                    ) -> list[dict[str, Any]]:
    """Segment every input and write its results (:func:`~lvseg.volumes.write_volume_results`).

    Every input is read before anything is written, so a bad file leaves no output behind.

    Returns:
        One JSON record per input (:func:`~lvseg.volumes.volume_record`), with ``"files"``.

    Raises:
        ValueError: if two inputs would write the same names, or a reader refuses an input.
    """
    cases = [input_case(p) for p in paths]
    names = [c.patient_id for c in cases]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"inputs {paths[names.index(name)]} and {paths[i]} would both write "
                             f"{name}_lv.nii.gz; rename one or use separate --out folders "
                             "(nothing was written)")
    records = []
    for case, name in zip(cases, names):
        result = segment_volume(case.volume, segmenter, ed=case.ed, es=case.es)
        files = write_volume_results(out, name, case.volume, result, case, label=label)
        record = json.loads(files[-2].read_text())  # the JSON just written
        records.append({**record, "files": [str(f) for f in files]})
    return records


def evaluate_volumes(patients: Iterable[str | os.PathLike[str]], segmenter: SliceSegmenter, *,
                     centre: str = "predicted", json_path: str | os.PathLike[str] | None = None,
                     figure: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Score ACDC patient folders by the challenge's protocol (:mod:`lvseg.volumes.protocol`).

    Each patient's ED and ES frame files (``Info.cfg``) are segmented and scored against their
    ``_gt`` masks over the full image.

    Args:
        patients: ``patientNNN`` folders (e.g. the thesis-validation patients).
        segmenter: the method under test.
        centre: written as the summary's ``"centre"`` (how the star was placed).
        json_path: where to write ``{"summary": ..., "patients": [...]}`` (atomically).
        figure: where to write the Bland–Altman PNG of the EF.

    Returns:
        ``{"summary": summarize_cases(...), "patients": [score_case(...), ...]}``; non-finite
        numbers are ``None`` (as in the JSON file).

    Raises:
        ValueError: if a patient lacks ground truth for ED or ES, or no patient is given.
    """
    scored = []
    for folder in patients:
        case = read_patient(folder, cine=False)
        missing = [p for p, t in (("ED", case.ed), ("ES", case.es)) if t not in case.truth]
        if missing:
            raise ValueError(f"{folder}: no ground truth (_gt file) for {' and '.join(missing)}")
        result = segment_volume(case.volume, segmenter, ed=case.ed, es=case.es)
        frames = [case.ed, case.es]
        truth = np.stack([case.truth[t] for t in frames])
        record = score_case(result.masks[frames], truth, case.volume.spacing, case.patient_id,
                            [case.volume.frames[t] for t in frames])
        record["warnings"], record["slices_without_lv"] = result.warnings, len(result.no_lv)
        scored.append(record)
    report = {"summary": summarize_cases(scored, centre), "patients": scored}
    if figure is not None:
        bland_altman_figure(figure, [c["ef"] for c in scored], [c["true_ef"] for c in scored],
                            title=f"EF, {len(scored)} patients, centre {centre}")
    report = _finite(report)
    if json_path is not None:
        atomic_write_bytes(json_path, (json.dumps(report, indent=2) + "\n").encode())
    return report
