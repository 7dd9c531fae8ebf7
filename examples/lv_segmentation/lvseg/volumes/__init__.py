"""Whole short-axis volumes: reading, LV volumes and EF, the challenge's protocol, writing.

One concept per module:

- :mod:`lvseg.volumes.io` — :class:`Volume` :math:`(T, Z, H, W)` from NIfTI or a DICOM series;
- :mod:`lvseg.volumes.patient` — :class:`CardiacCase`: ED/ES frames from an ACDC patient folder
  (``Info.cfg``), two marked frames, or a volume with given frames;
- :mod:`lvseg.volumes.segment` — :func:`segment_volume` runs any :class:`SliceSegmenter` on
  every slice and checks each result;
- :mod:`lvseg.volumes.plausibility` — the checks of one slice, each a warning naming the slice;
- :mod:`lvseg.volumes.stack_checks` — the checks of a stack: across ED and ES, and its ends;
- :mod:`lvseg.volumes.centre_checks` — the check of the star centres of the ES stack;
- :mod:`lvseg.volumes.cardiac` — LV volume (mL) and ejection fraction;
- :mod:`lvseg.volumes.protocol` — 3-D Dice and Hausdorff distance over the full image,
  EDV/ESV/EF agreement, the summary keys;
- :mod:`lvseg.volumes.figures` — slice montage and Bland–Altman PNGs;
- :mod:`lvseg.volumes.write` — NIfTI masks in the input's geometry, JSON and CSV;
- :mod:`lvseg.volumes.run` — :func:`predict_volumes` and :func:`evaluate_volumes`, what the CLI
  calls;
- :mod:`lvseg.volumes.phantoms` — patient folders in the ACDC layout with a known EF (tests).

Example:
    >>> import tempfile
    >>> folder = write_phantom_patient(tempfile.mkdtemp(), "patient901", size=48, n_frames=4)
    >>> case = read_patient(folder)
    >>> truth = np.stack([case.truth[case.ed], case.truth[case.es]])
    >>> round(score_case(truth, truth, case.volume.spacing, case.patient_id)["ef"], 1) > 0
    True
"""

from __future__ import annotations

import numpy as np

from lvseg.volumes.cardiac import Phases, ejection_fraction, lv_volume_ml, phases
from lvseg.volumes.centre_checks import CENTRE_JUMP_FACTOR, check_es_centre_jump
from lvseg.volumes.figures import bland_altman_figure, montage_figure
from lvseg.volumes.io import (
    MAX_VOXELS,
    SLICE_SPACING_RANGE_MM,
    Volume,
    check_volume_spacing,
    read_dicom_series,
    read_nifti,
    read_volume,
)
from lvseg.volumes.patient import (
    CardiacCase,
    case_from_frames,
    case_from_volume,
    read_info,
    read_patient,
)
from lvseg.volumes.phantoms import PhantomTruth, phantom_cine, write_phantom_patient
from lvseg.volumes.plausibility import (
    check_area,
    check_center_inside,
    check_rim,
    check_slice,
    lv_area_mm2,
)
from lvseg.volumes.protocol import dice_3d, hausdorff_3d, pearson, score_case, summarize_cases
from lvseg.volumes.run import evaluate_volumes, input_case, predict_volumes
from lvseg.volumes.segment import (
    SliceResult,
    SliceSegmenter,
    VolumeSegmentation,
    largest_component,
    segment_volume,
)
from lvseg.volumes.stack_checks import (
    APEX_END_FACTOR,
    APEX_FIRST_MARGIN,
    ES_AREA_FACTOR,
    ES_END_FACTOR,
    apex_is_last,
    check_apex_end,
    check_es_area,
    check_es_stack_ends,
)
from lvseg.volumes.write import MASK_LABEL, volume_record, write_mask_nifti, write_volume_results

__all__ = [
    "APEX_END_FACTOR",
    "APEX_FIRST_MARGIN",
    "CENTRE_JUMP_FACTOR",
    "ES_AREA_FACTOR",
    "ES_END_FACTOR",
    "MASK_LABEL",
    "MAX_VOXELS",
    "SLICE_SPACING_RANGE_MM",
    "CardiacCase",
    "PhantomTruth",
    "Phases",
    "SliceResult",
    "SliceSegmenter",
    "Volume",
    "VolumeSegmentation",
    "apex_is_last",
    "bland_altman_figure",
    "case_from_frames",
    "case_from_volume",
    "check_area",
    "check_center_inside",
    "check_apex_end",
    "check_es_area",
    "check_es_centre_jump",
    "check_es_stack_ends",
    "check_rim",
    "check_slice",
    "check_volume_spacing",
    "dice_3d",
    "ejection_fraction",
    "evaluate_volumes",
    "hausdorff_3d",
    "largest_component",
    "input_case",
    "lv_area_mm2",
    "lv_volume_ml",
    "montage_figure",
    "pearson",
    "phantom_cine",
    "phases",
    "predict_volumes",
    "read_dicom_series",
    "read_info",
    "read_nifti",
    "read_patient",
    "read_volume",
    "score_case",
    "segment_volume",
    "summarize_cases",
    "volume_record",
    "write_mask_nifti",
    "write_phantom_patient",
    "write_volume_results",
]

# Re-bound here so that autodoc, which reads attribute docs from this module's source, shows them.
#: Value of the LV voxels in written masks (:mod:`lvseg.volumes.write`).
MASK_LABEL = MASK_LABEL
#: Most voxels lvseg reads into memory (:mod:`lvseg.data.readers`).
MAX_VOXELS = MAX_VOXELS
#: Accepted distance between short-axis slices in mm (:mod:`lvseg.volumes.io`).
SLICE_SPACING_RANGE_MM = SLICE_SPACING_RANGE_MM
#: Largest plausible ratio of a slice's LV area at ES to its area at ED
#: (:mod:`lvseg.volumes.stack_checks`).
ES_AREA_FACTOR = ES_AREA_FACTOR
#: Largest plausible ES/ED area ratio of an end slice of the ES stack over the LV's median
#: (:mod:`lvseg.volumes.stack_checks`).
ES_END_FACTOR = ES_END_FACTOR
#: Smallest ratio of the apex end's LV area to its neighbour's toward the base that warns
#: (:mod:`lvseg.volumes.stack_checks`).
APEX_END_FACTOR = APEX_END_FACTOR
#: How much more LV area the last half of a stack must hold than the first to read it as stored
#: apex first (:mod:`lvseg.volumes.stack_checks`).
APEX_FIRST_MARGIN = APEX_FIRST_MARGIN
#: How many LV radii an ES slice's star centre may lie from its neighbours' and its own at ED
#: (:mod:`lvseg.volumes.centre_checks`).
CENTRE_JUMP_FACTOR = CENTRE_JUMP_FACTOR
