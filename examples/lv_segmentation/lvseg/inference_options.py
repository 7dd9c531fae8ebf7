"""The options of the commands that run a trained model: ``lvseg evaluate`` and ``lvseg predict``.

:class:`EvaluateConfig` and :class:`PredictConfig` (each command's options are generated from its
config's fields), and the groups they share: :class:`RunOptions` (how the run's model is loaded
and run; its :class:`StarOverrides`, the run's star settings replaced for prediction, are what
:func:`lvseg.runs.load_run` takes) and :class:`LocateOptions` (how the LV is found without a
centre). The module imports no torch, so ``lvseg evaluate --help``, ``lvseg predict --help`` and
their usage errors are answered by the parser alone; what the options drive lives in
:mod:`lvseg.evaluate`, :mod:`lvseg.predict`, :mod:`lvseg.runs` and :mod:`lvseg.locate`.

Example:
    >>> PredictConfig(out="masks", center=(80.0, 72.5)).find
    'auto'
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from typing import Any

from lvseg.data.datasets import DATASETS
from lvseg.data.preprocessing import SPACING_MM
from lvseg.data.splits import ALL, SPLITS
from lvseg.device import DEVICES
from lvseg.options import MAX_SEED, check_fields, document, option

__all__ = ["CENTRE_FREE_N_LINES", "EVAL_SPLITS", "FINDERS", "MIN_AREA_MM2", "PROTOCOLS",
           "EvaluateConfig", "LocateOptions", "PredictConfig", "RunOptions", "StarOverrides"]

#: Star lines of centre-free segmentation (:class:`lvseg.centre_free.RunSegmenter`: ``lvseg
#: predict`` without ``--center``, ``lvseg evaluate --protocol volumes``,
#: ``benchmarks/lv_volumes``) when ``--n-lines`` is not given; a run trained with more keeps its
#: own (:func:`lvseg.centre_free.centre_free_star`), and everything else (the thesis protocol,
#: ``lvseg predict --center``, training) uses the run's. Why: the contour is a polygon through
#: one vertex per line, so fewer lines cut more of a convex LV off (an inscribed 25-gon has 1 %
#: less area than its circle, a 50-gon 0.26 %), and the DP does not depend on the number of
#: lines, so a run trained with 25 predicts with more. The evidence (3-D Dice on ACDC volumes,
#: 50 against 25 lines): ``benchmarks/lv_volumes/README.md``, "More star lines for centre-free
#: segmentation".
CENTRE_FREE_N_LINES = 50
#: A blob smaller than this (mm²) is "no LV" (an apical LV cavity is larger; noise blobs smaller).
MIN_AREA_MM2 = 100.0
#: ``--find``: ``map`` (:func:`lvseg.locate.locate`), ``motion``
#: (:func:`lvseg.anchor.locate_motion`) or ``auto`` (:meth:`lvseg.centre_free.RunSegmenter.finder`).
FINDERS = ("auto", "map", "motion")
#: The evaluation protocols of ``lvseg evaluate --protocol``.
PROTOCOLS = ("thesis", "volumes")
#: What ``lvseg evaluate`` can evaluate: the validation or test patients, or every usable slice.
EVAL_SPLITS = (*SPLITS[1:], ALL)


@document
@dataclass(frozen=True, kw_only=True)
class StarOverrides:
    """The run's star settings replaced for prediction (``None``: the run's own; the weights
    depend on none of them): what :func:`lvseg.runs.load_run` applies to the loaded run.

    Example:
        >>> StarOverrides(n_lines=50).given()
        {'n_lines': 50}
    """

    delta: int | None = option(None, "the DP's smoothness for prediction: the largest index "
                               "change between neighbouring star lines (default: the run's, 1 "
                               "by default). With a centre away from the centre of mass, 2 lets "
                               "the contour follow the LV (docs/reproducing_thesis.md, "
                               "'Fig. 5.4', has the measurements)", metavar="D")
    n_lines: int | None = option(None, "star lines for prediction (default: "
                                 f"{CENTRE_FREE_N_LINES}, or the run's if it has more, where the "
                                 "LV is found without a centre, i.e. predict without --center "
                                 "and evaluate --protocol volumes; the run's, 25 by default, "
                                 "for the rest): the DP does not depend on the number of lines, "
                                 "so a run trained with 25 predicts with more, a finer contour "
                                 "(docs/volumes.md has the measurements); --n-lines 25 keeps "
                                 "such a run's star everywhere", metavar="N")
    edge_offset: float | None = option(None, "where the DP contour is drawn, in point steps "
                                       "beyond the chosen points (default: the run's, 0.5 by "
                                       "default: the LV's edge); 0 draws it through them, as "
                                       "lvseg did before, to reproduce earlier numbers",
                                       metavar="O", low=0.0, high=1.0)
    smoothing: int | None = option(None, "the odd width of the moving average on the DP's "
                                   "indices for prediction (default: the run's, by default the "
                                   "odd integer nearest N/4 of the lines, which follows "
                                   "the lines used); 1 (or 0): none (docs/volumes.md has the "
                                   "measurements)", metavar="W")

    def __post_init__(self) -> None:
        check_fields(self)

    def given(self) -> dict[str, Any]:
        """The settings replaced (the fields that are not ``None``), by field name."""
        return {f.name: getattr(self, f.name) for f in fields(StarOverrides)
                if getattr(self, f.name) is not None}


@document
@dataclass(frozen=True, kw_only=True)
class RunOptions(StarOverrides):
    """How a trained run's model is loaded and run: the options ``lvseg evaluate`` and
    ``lvseg predict`` share (``lvseg train`` shares ``device``)."""

    device: str = option("auto", "where the U-Net (and the surrogate) run: auto = CUDA when "
                         "present, else the CPU; the star DP always runs on the CPU",
                         choices=DEVICES)

    @property
    def star_overrides(self) -> StarOverrides:
        """The star's settings alone (the :class:`StarOverrides` fields), as
        :func:`lvseg.runs.load_run` takes them."""
        return StarOverrides(**self.given())


@document
@dataclass(frozen=True, kw_only=True)
class LocateOptions:
    """How the LV is found without a centre: the options ``lvseg predict`` (volumes) and
    ``lvseg evaluate --protocol volumes`` share."""

    locator: str | None = option(None, "a unet or unet-dp run directory whose U-Net finds the "
                                 "LV (default: the run itself; required for edpcnn runs, whose "
                                 "map is trained through the DP)", metavar="RUN_DIR")
    min_lv_area: float = option(MIN_AREA_MM2, "a slice whose largest foreground blob is smaller "
                                "(mm²) has no LV", metavar="MM2", low=0.0)
    find: str = option("auto", "how the LV is found: map (the locator's U-Net map over the "
                       "whole slice); motion (crops through the locator's U-Net around the "
                       "peak of the motion between the frames: for a locator trained on "
                       "LV-centred crops, --crop-offset 0; a single frame falls back to map with "
                       "a warning); auto (motion for such a locator when the input has two "
                       "frames or more, else map)", choices=FINDERS)

    def __post_init__(self) -> None:
        check_fields(self)


@document
@dataclass(frozen=True, kw_only=True)
class EvaluateConfig(RunOptions, LocateOptions):
    """The options of ``lvseg evaluate`` (the command line is generated from the fields)."""

    protocol: str = option("thesis", "thesis: Dice/HD inside the star's square, the star at the "
                           "true LV centre; volumes: the ACDC challenge's 3-D Dice/HD over the "
                           "full image of the ED and ES volumes, EDV/ESV/EF, the LV found without "
                           "ground truth (ACDC patient folders)", choices=PROTOCOLS)
    data: str | None = option(None, "dataset (default: the run's)", choices=tuple(DATASETS))
    data_dir: str | None = option(None, "dataset folder (default: the run's)", metavar="DIR")
    split: str = option("test", "patients to evaluate; 'all' = every usable slice, without a "
                        "patient split (any folder, even of one patient)", choices=EVAL_SPLITS)
    center_jitter: float = option(0.0, "jitter the star centre: s.d. R x object radius, kept "
                                  "inside the object", metavar="R", low=0.0)
    jitter_seed: int = option(0, "seed of the centre jitter (train's --seed seeds the training)",
                              metavar="S", low=0, high=MAX_SEED)
    dp: bool = option(False, "evaluate a unet run as U-Net+DP: the star DP on its probability "
                      "map (the same weights; what a unet-dp run does)")
    json: str | None = option(None, "write the results (means, std, per image) as JSON",
                              metavar="FILE")
    figures: str | None = option(None, "write pipeline overlays (thesis fig. 4.3) as PNGs into "
                                 "DIR", metavar="DIR")
    max_figures: int = option(12, "at most this many PNGs", metavar="N", low=0)

    def __post_init__(self) -> None:
        check_fields(self)


_CENTER_HELP = (
    "LV centre in pixels of the image, from 0: x = column, y = row (NIfTI: voxel j,i). Click the "
    "middle of the bright blood pool in a viewer, or take the centroid of a rough mask; a centre "
    "off by a fraction of the LV radius still works. Check it on <name>_overlay.png"
)


def _center(text: str) -> tuple[float, float]:
    """``--center X,Y``: two finite numbers."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers); got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite X,Y; got {text!r}")
    return x, y


@document
@dataclass(frozen=True, kw_only=True)
class PredictConfig(RunOptions, LocateOptions):
    """The options of ``lvseg predict`` (the command line is generated from the fields)."""

    center: tuple[float, float] | None = option(
        None, _CENTER_HELP + ". Without it, every input is a volume (3-D/4-D NIfTI, a DICOM "
        "series folder or an ACDC patient folder) and the LV is found in every slice",
        metavar="X,Y", parse=_center)
    spacing: float | None = option(None, "pixel size in mm for .npy images (default: the "
                                   f"training spacing {SPACING_MM})", metavar="MM")
    slice: int | None = option(None, "slice of a 3-D NIfTI volume", metavar="Z")
    out: str = option(help="output folder", metavar="DIR")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.center is not None and self.find != "auto":
            raise ValueError("--find applies to volumes, where the LV is found; with --center "
                             "the star goes where it is put: leave --find out")
        if self.center is None:
            for name in ("slice", "spacing"):
                if getattr(self, name) is not None:
                    raise ValueError(f"--{name} applies to one 2-D slice with --center; a volume "
                                     "has its own slices and voxel size: leave --" + name + " out")
