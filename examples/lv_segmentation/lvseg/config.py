"""The configuration of a training run (:class:`TrainConfig`, saved as ``config.json``).

Each option is written once, as a field with its help text (:func:`lvseg.options.option`): the
docstring's attribute list and the ``lvseg train`` options are generated from the fields.

Validation has one owner per rule. The type and bounds of every field are written in the field
(``low=``/``high=`` of :func:`~lvseg.options.option`) and checked by
:func:`~lvseg.options.check_fields`, for the command line and a hand-edited ``config.json``
alike; :class:`TrainConfig` adds what a field cannot say (the learning rate > 0, the nested
``star`` and ``fractions``); the fields it passes on are
checked by the constructors that take them when the model is built
(:func:`lvseg.methods.build_model`, before any data is loaded): ``unet_*`` by ``UNet``, ``sigma``
and ``samples`` by ``Surrogate``/``ES`` (``samples`` even for the antithetic ES pairs),
``fit_steps`` by ``Surrogate`` (``>= 0``: 0 never fits the surrogate), ``surrogate_*`` by
``Surrogate`` and ``StarSurrogate``, the star settings by :class:`~lvseg.star.StarConfig`,
``fractions`` by ``split_by_patient``, ``synthetic_slices`` by ``make_phantoms``, and
``unlabelled`` by ``build_model`` (the method) and ``MeanTeacher`` (unlabelled slices exist).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from diffbypass.validation import positive_number
from lvseg.data.datasets import DATASETS
from lvseg.data.preprocessing import CROP_SIZE
from lvseg.data.splits import SCHEMES
from lvseg.options import MAX_SEED, check_fields, document, option
from lvseg.rundir import RunDirError
from lvseg.star import StarConfig
from lvseg.train_choices import (AVERAGE_WARMUP, EVIDENCE, LOCATOR_PREFIX, METHOD_DEFAULTS, NORMS,
                                 PRESETS, SURROGATE_NAMES, locator_dir)

__all__ = ["SAVED_BEFORE", "TrainConfig"]

_METHOD_HELP = "; ".join(f"{m.name}: {m.help}" for m in METHOD_DEFAULTS.values())
_DATA_HELP = "; ".join(f"{d.name}: {d.help}" for d in DATASETS.values())
_ITERATIONS = ", ".join(f"{m.name} {m.iterations}" for m in METHOD_DEFAULTS.values())
_SAMPLES = ", ".join(f"{m.name} {m.samples}" for m in METHOD_DEFAULTS.values() if m.estimated)
_SIGMA = ", ".join(f"{m.name} {m.sigma:g}" for m in METHOD_DEFAULTS.values() if m.estimated)
_RELAXED = {m.name: m.temperature for m in METHOD_DEFAULTS.values() if m.temperature is not None}
_LR = ", ".join(f"{m.name} {m.lr:g}" for m in METHOD_DEFAULTS.values())
_LEARNERS = ", ".join(m.name for m in METHOD_DEFAULTS.values() if m.learns_smoothness)


#: Bounds of the sizes and counts below (a typo such as ``--unet-channels 100000`` must not ask
#: for gigabytes before anything else is checked).
_MAX_CHANNELS = 128
_MAX_ITERATIONS = 10_000_000


#: What a ``config.json`` without the key means: the value its run trained with, saved before
#: the option existed (``surrogate``) or before its default changed (``augment``: ``none`` until
#: issue #20's ACDC study, ``docs/reproducing_thesis.md``, 'Ten labels').
SAVED_BEFORE: dict[str, Any] = {"surrogate": "star", "augment": "none"}


def _size(text: str) -> int | None:
    """``--train-size``: a positive integer, or ``all`` (``None``)."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'all'; got {text!r}"
        ) from None


@document
@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as the run's ``config.json``).

    Defaults are the best we reached for ``--train-size 10`` on two CPU cores in minutes
    (``docs/lv_example.md`` explains each choice). Thesis values, where they differ, in brackets.
    The module docstring says which constructor checks which field.
    """

    method: str = option(help=_METHOD_HELP, choices=tuple(METHOD_DEFAULTS))
    data: str = option("sunnybrook", "dataset; " + _DATA_HELP, choices=tuple(DATASETS))
    data_dir: str | None = option(None, "dataset folder, stored as an absolute path (None: the "
                                  "dataset's default)", metavar="DIR")
    split: str = option("random", "patient split: random (seeded shares: 1/3 each for "
                        "sunnybrook, 0.8/0.1/0.1 otherwise) or thesis (ACDC: validation = "
                        "patients whose number is divisible by 5, no test split)",
                        choices=tuple(SCHEMES))
    train_size: int | None = option(10, "telescopic training subset: N slices, or 'all' (None)",
                                    metavar="N", parse=_size, low=1)
    seed: int = option(0, "seed of initialisation, batch order, centre jitter and surrogate "
                       "noise", metavar="S", low=0, high=MAX_SEED)
    split_seed: int = option(0, "seed of the patient split and of the telescopic shuffle",
                             metavar="S", low=0, high=MAX_SEED)
    iterations: int | None = option(None, f"training iterations (None: {_ITERATIONS}; "
                                    "edpcnn's chosen on ACDC at 10 labelled images: "
                                    f"{EVIDENCE})",
                                    thesis="20000", metavar="K", low=1, high=_MAX_ITERATIONS)
    batch_size: int = option(10, "images per iteration", thesis="10", metavar="B", low=1,
                             high=1024)
    lr: float | None = option(None, f"Adam learning rate of the U-Net (None: {_LR})",
                              thesis="1e-4", metavar="LR")
    val_every: int = option(25, "validation Dice (for best.pt) every K iterations",
                            thesis="50", metavar="K", low=1, high=_MAX_ITERATIONS)
    checkpoint_every: int = option(25, "write last.pt every K iterations", metavar="K", low=1,
                                   high=_MAX_ITERATIONS)
    unet_channels: int = option(8, "U-Net base channels", thesis="64", metavar="C", low=1,
                                high=_MAX_CHANNELS)
    unet_depth: int = option(4, "U-Net down-samplings (at most log2 of the crop size: each "
                             "halves the crop)", thesis="4", metavar="D", low=0,
                             high=CROP_SIZE.bit_length() - 1)
    unet_norm: str = option("group", "U-Net normalisation", thesis="none", choices=NORMS)
    learn_smoothness: bool = option(False, "train the DP's smoothness penalty lambda with the "
                                    "U-Net through the DP, starting at --smoothness (0: a "
                                    "default start); " + _LEARNERS)
    smoothness_lr: float = option(1e-2, "Adam learning rate of log(lambda) with "
                                  "--learn-smoothness", metavar="LR")
    star: StarConfig = option(help="star pattern and DP settings (their own options)",
                              default_factory=StarConfig, cli=False)
    jitter: float = option(1.0, "training star-centre jitter: s.d. as a fraction of the object "
                           "radius, truncated to the object", thesis="1", metavar="F",
                           low=0.0)
    rotation: float = option(0.5, "training star rotation, uniform in +-R radians",
                             thesis="0.5", metavar="RAD", low=0.0)
    augment: str = option("noflip", "training data augmentation, the same for every method "
                          "(lvseg.train_choices.PRESETS; the evidence for the default: "
                          f"{EVIDENCE})", thesis="none", choices=tuple(PRESETS))
    average: float = option(0.0, "weight averaging: validation, best.pt and so every "
                            "evaluation and prediction use an EMA of the U-Net's weights with "
                            "this decay per iteration, warmed up as (1 + t) / "
                            f"({AVERAGE_WARMUP} + t) "
                            "(lvseg.averaging; 0: the last weights, the thesis' setting; the "
                            f"evidence for the default: {EVIDENCE})",
                            metavar="D", low=0.0, high=1.0)
    crop_offset: float = option(0.0, "the data's 128 x 128 crops are centred on the LV moved by "
                                "up to F x half the crop, uniformly per slice (0: centred, the "
                                "thesis' setting; a U-Net meant to find the LV on whole slices, "
                                "--locator, needs about 1)", metavar="F", low=0.0, high=1.0)
    negatives: bool = option(False, "locator (unet on acdc, --train-size all): also train on "
                             "the training patients' slices without LV, all background, cropped "
                             "around the nearest slice's LV (lvseg.negatives; validation as "
                             "without)")
    centres: str | None = option(None, "training star centres also from a locator run "
                                 "(edpcnn, edpcnn-es): locator:RUN_DIR, a unet run whose "
                                 "predicted LV centre on each training crop replaces the "
                                 "jittered true centre for --centres-share of the images "
                                 "(lvseg.train_centres)", metavar="locator:RUN_DIR")
    centres_share: float = option(0.5, "with --centres: the share of each batch whose star "
                                  "goes to the locator's centre", metavar="P", low=0.0,
                                  high=1.0)
    sigma: float | None = option(None, f"surrogate exploration / ES noise scale (None: {_SIGMA})",
                                 thesis="1", metavar="SIGMA")
    samples: int | None = option(None, f"noise samples per input (None: {_SAMPLES}; how the "
                                 "surrogate's S and --fit-steps were chosen: docs/lv_example.md, "
                                 "'Speed')", thesis="10", metavar="S", low=1, high=1024)
    fit_steps: int = option(3, "surrogate fit steps per iteration", thesis="10", metavar="K",
                            low=0, high=1000)
    surrogate_lr: float = option(1e-3, "the surrogate's Adam learning rate", metavar="LR")
    surrogate: str = option("star", "surrogate architecture: star (the thesis' small U-Net on "
                            "the star) or line (line-wise convolutions, circular across lines)",
                            thesis="star", choices=SURROGATE_NAMES)
    surrogate_channels: int = option(8, "surrogate base channels", thesis="8", metavar="C",
                                     low=1, high=_MAX_CHANNELS)
    temperature: float | None = option(
        None, "temperature of the relaxed DP that " + ", ".join(_RELAXED) + " trains through "
        "(None: " + ", ".join(f"{k} {v:g}" for k, v in _RELAXED.items()) + "; the ACDC study "
        f"chooses it on validation: {EVIDENCE}); at least 1e-3: towards 0 the relaxed DP "
        "becomes the hard DP, whose gradient is 0 almost everywhere", metavar="TAU", low=1e-3)
    unlabelled: int = option(0, "semi-supervised: K unlabelled training-split images per "
                             "iteration, their targets from an EMA teacher (lvseg.teacher; "
                             "0: off; unet, unet-dp and edpcnn; the evidence for the default: "
                             f"{EVIDENCE})", metavar="K", low=0, high=1024)
    unlabelled_weight: float = option(1.0, "weight of the unlabelled images' loss (reached after "
                                      "--unlabelled-rampup iterations)", metavar="W", low=0.0)
    unlabelled_rampup: int = option(100, "iterations over which the unlabelled weight rises "
                                    "from 0 (sigmoid-shaped; 0: none)", metavar="K", low=0,
                                    high=_MAX_ITERATIONS)
    unlabelled_agreement: int | None = option(None, "edpcnn: an unlabelled image's star line "
                                              "counts only where the teacher's DP contours "
                                              "around the given and the jittered centre cross "
                                              "it within A points (None: every line)",
                                              metavar="A", low=0, high=1024)
    teacher_decay: float = option(0.99, "EMA decay of the teacher's weights per iteration",
                                  metavar="D", low=0.0, high=1.0)
    synthetic_slices: int = option(256, "phantoms generated for --data synthetic", metavar="N",
                                   low=1, high=100_000)
    fractions: tuple[float, float, float] | None = option(
        None, "patient shares (train, val, test) of the split (None: the dataset's default)",
        cli=False)

    def __post_init__(self) -> None:
        check_fields(self)  # types and bounds, from the fields' metadata
        if isinstance(self.star, dict):
            unknown = sorted(set(self.star) - {f.name for f in dataclasses.fields(StarConfig)})
            if unknown:
                raise ValueError(f"star has unknown keys: {', '.join(unknown)}")
            self.star = StarConfig(**self.star)
        if not isinstance(self.star, StarConfig):
            raise ValueError(f"star must be a dict of star settings; got {self.star!r}")
        if self.fractions is not None:
            if not (isinstance(self.fractions, (list, tuple)) and len(self.fractions) == 3
                    and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                            for f in self.fractions)):
                raise ValueError(
                    f"fractions must be None or three numbers (train, val, test); got "
                    f"{self.fractions!r}")
            self.fractions = tuple(float(f) for f in self.fractions)  # type: ignore[assignment]
        if self.data_dir is not None:
            self.data_dir = os.path.abspath(self.data_dir)
        if self.iterations is None:
            self.iterations = METHOD_DEFAULTS[self.method].iterations
        if self.samples is None:
            self.samples = METHOD_DEFAULTS[self.method].samples
        if self.sigma is None:
            self.sigma = METHOD_DEFAULTS[self.method].sigma
        if self.lr is None:
            self.lr = METHOD_DEFAULTS[self.method].lr
        if self.temperature is None:
            self.temperature = METHOD_DEFAULTS[self.method].temperature
        elif METHOD_DEFAULTS[self.method].temperature is None:
            raise ValueError(f"temperature (--temperature) is for the methods trained through "
                             f"the relaxed DP ({', '.join(_RELAXED)}); got method "
                             f"{self.method!r}: drop --temperature")
        if self.centres is not None:
            if not METHOD_DEFAULTS[self.method].end_to_end:
                through = ", ".join(m.name for m in METHOD_DEFAULTS.values() if m.end_to_end)
                raise ValueError(f"centres (--centres) applies to the methods trained through "
                                 f"the DP ({through}); a {self.method} run has no star in "
                                 "training: drop --centres")
            self.centres = LOCATOR_PREFIX + locator_dir(self.centres)
        if self.negatives:
            self._check_negatives()
        positive_number("lr", self.lr)
        positive_number("smoothness_lr", self.smoothness_lr)

    def _check_negatives(self) -> None:
        pixel = ", ".join(m.name for m in METHOD_DEFAULTS.values() if not m.dp)
        complete = ", ".join(d.name for d in DATASETS.values() if d.complete_labels)
        for wrong, why in (  # unet-dp too: its validation runs the DP
            (METHOD_DEFAULTS[self.method].dp, f"is for the U-Net trained on its pixels ({pixel}; "
             f"a star needs an LV centre); got method {self.method!r}: drop --negatives"),
            (not DATASETS[self.data].complete_labels, f"needs labels on every slice "
             f"({complete}); got data {self.data!r}: drop --negatives"),
            (self.train_size is not None, "adds the no-LV slices of every training patient, so "
             f"it needs all their LV slices: give --train-size all; got train_size "
             f"{self.train_size}")):
            if wrong:
                raise ValueError(f"negatives (--negatives) {why}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (what ``config.json`` holds)."""
        out = dataclasses.asdict(self)
        out["star"] = self.star.as_dict()
        out["fractions"] = list(self.fractions) if self.fractions is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from elsewhere).

        A key missing from a config saved by an older lvseg takes the value that its run
        trained with (:data:`SAVED_BEFORE`), not today's default; other missing keys take the
        default.

        Every field is checked (type and bounds, naming the key). With ``source`` (the file the
        dict came from), an error is a :class:`~lvseg.rundir.RunDirError` naming it.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            unknown = sorted(set(data) - names - {"lvseg_version"})
            if unknown:
                raise ValueError(f"unknown config keys: {', '.join(unknown)}")
            data = {**SAVED_BEFORE, **data}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (ValueError, TypeError) as error:
            if source is None:
                raise
            raise RunDirError(f"{source}: {error}; correct it there (lvseg train --help says "
                              "what each option takes)") from None
