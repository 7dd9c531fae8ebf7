"""What the options of ``lvseg train`` choose from, torch-free, so ``--help`` starts no torch.

* :class:`MethodDefaults` and :data:`METHOD_DEFAULTS`: each method's name, help and defaults
  (``--method``, and the ``None`` defaults of ``--iterations``, ``--samples``, ``--sigma``,
  ``--lr``, ``--temperature``); :data:`lvseg.methods.METHODS` adds to each how it is trained;
* :class:`AugmentConfig` and :data:`PRESETS`: the ``--augment`` presets (:mod:`lvseg.augment`
  applies them);
* :data:`NORMS` (``--unet-norm``, :class:`lvseg.models.UNet`) and :data:`SURROGATE_NAMES`
  (``--surrogate``, :data:`lvseg.edpcnn.SURROGATES`);
* :data:`LOCATOR_PREFIX` and :func:`locator_dir`: the form of ``--centres locator:RUN_DIR``
  (:mod:`lvseg.train_centres` uses it).

Example:
    >>> [m.name for m in METHOD_DEFAULTS.values() if m.end_to_end]
    ['edpcnn', 'edpcnn-es', 'edpcnn-softdp']
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from lvseg.options import check_fields, document, option

__all__ = ["AVERAGE_WARMUP", "EVIDENCE", "LOCATOR_PREFIX", "METHOD_DEFAULTS", "NORMS", "PRESETS",
           "SURROGATE_NAMES", "AugmentConfig", "MethodDefaults", "locator_dir"]


@dataclass(frozen=True)
class MethodDefaults:
    """What the command line knows of a method: its name, help and defaults.

    Attributes:
        name: the ``--method`` value.
        help: one phrase for ``lvseg train --help``.
        dp: whether the prediction is the star DP's contour (else the U-Net's mask).
        iterations: default training iterations (``docs/lv_example.md`` says how they were
            chosen).
        samples: default noise samples per input of the estimator (``--samples``).
        sigma: default noise scale of the estimator (``docs/lv_example.md`` explains both).
        lr: default Adam learning rate of the U-Net (``--lr``).
        estimated: whether the gradient through the DP is estimated (a bypass with an
            estimator; :attr:`lvseg.methods.Method.estimator` builds it).
        learns_smoothness: whether ``--learn-smoothness`` may train the DP's smoothness penalty
            with the U-Net (through the bypass, as its shared second argument).
        temperature: without an estimator, the default temperature (``--temperature``) of the
            relaxed DP :func:`~diffbypass_stardp.soft_dp` the U-Net is trained through;
            ``None``: the method has no relaxed DP.
    """

    name: str
    help: str
    dp: bool
    iterations: int
    samples: int = 10
    sigma: float = 1.0
    lr: float = 1e-3
    estimated: bool = False
    learns_smoothness: bool = False
    temperature: float | None = None

    @property
    def end_to_end(self) -> bool:
        """Whether the U-Net is trained through the DP (with centre jitter and rotation)."""
        return self.estimated or self.temperature is not None


#: Where ``lvseg train --help`` sends a reader for the evidence behind the defaults that the ACDC
#: study chooses (augmentation, unlabelled images, weight averaging, the relaxed DP's
#: temperature, ES).
EVIDENCE = "docs/reproducing_thesis.md, 'Ten labels'"

#: The methods by name, in the order of the thesis' comparison. The 1000 iterations of ``edpcnn``,
#: ``unet`` and ``unet-dp``: EDPCNN at these defaults, 10 ACDC images, still gained from 500 to
#: 1000 (issue #20, :data:`EVIDENCE`; 500 before, the ACDC study's 10-image runs, and 150 and 200
#: before that, what ``make demo`` still trains).
METHOD_DEFAULTS: dict[str, MethodDefaults] = {m.name: m for m in (
    MethodDefaults("unet", "U-Net with BCE + soft Dice", dp=False, iterations=1000),
    MethodDefaults("unet-dp", "the same training, star DP applied at test time", dp=True,
                   iterations=1000),
    MethodDefaults("edpcnn", "U-Net trained through the DP with the differentiable bypass "
                   "(thesis Algorithm 3)", dp=True, iterations=1000, samples=1, estimated=True,
                   learns_smoothness=True),
    MethodDefaults("edpcnn-es", "the same with ES (its defaults: "
                   "benchmarks/acdc_ablation/README.md, 'ES at the defaults'; against the "
                   f"bypass: {EVIDENCE})", dp=True, iterations=300, sigma=0.1, lr=3e-3,
                   estimated=True, learns_smoothness=True),
    MethodDefaults("edpcnn-softdp", "U-Net trained end to end through the relaxed DP (soft_dp, "
                   "exact gradient) instead of the bypass", dp=True, iterations=150,
                   learns_smoothness=True, temperature=3.0),
)}  # fmt: skip

#: The warm-up of ``--average``: the decay of iteration ``t`` is at most
#: ``(1 + t) / (AVERAGE_WARMUP + t)`` (:meth:`lvseg.averaging.WeightAverage.decay_at`).
AVERAGE_WARMUP = 10

#: The U-Net's normalisation layers (``--unet-norm``).
NORMS = ("group", "batch", "none")

#: The surrogate architectures (``--surrogate``), the keys of :data:`lvseg.edpcnn.SURROGATES`.
SURROGATE_NAMES = ("star", "line")


@document
@dataclass(frozen=True)
class AugmentConfig:
    """The ranges of the random augmentation (:mod:`lvseg.augment` says what each does); every 0
    is no augmentation.

    Raises:
        ValueError: naming the setting outside its bounds (``rotation must be a number in
            [0, 3.14159]; got 4``).
    """

    flip: float = option(0.0, "probability of each flip (left-right, up-down)", low=0.0,
                         high=1.0)
    rotation: float = option(0.0, "rotation, uniform in +-R radians", low=0.0, high=math.pi)
    scale: float = option(0.0, "isotropic scaling, uniform in 1 +- Z", low=0.0, high=0.5)
    elastic: float = option(0.0, "elastic displacement: s.d. in pixels of the coarse offsets "
                            "(0: none)", low=0.0, high=16.0)
    elastic_grid: int = option(5, "elastic control points per side", low=2, high=32)
    gamma: float = option(0.0, "gamma = exp(u), u uniform in +-G, on the image's own range",
                          low=0.0, high=2.0)
    contrast: float = option(0.0, "intensity factor, uniform in 1 +- C", low=0.0, high=0.9)
    brightness: float = option(0.0, "intensity shift, uniform in +-B (normalised units)",
                               low=0.0, high=5.0)

    def __post_init__(self) -> None:
        check_fields(self)  # types and bounds, naming the field

    @property
    def identity(self) -> bool:
        """Whether nothing changes (every range 0): :func:`~lvseg.augment.augment_batch` then
        draws nothing."""
        return not any((self.flip, self.rotation, self.scale, self.elastic, self.gamma,
                        self.contrast, self.brightness))


_STANDARD = AugmentConfig(flip=0.5, rotation=0.3, scale=0.15, gamma=0.3, contrast=0.2,
                          brightness=0.2)
#: The ``--augment`` presets. ``light`` and ``standard`` differ in their ranges; ``elastic`` is
#: ``standard`` with a small elastic deformation; ``noflip`` is ``standard`` without the flips,
#: so the images keep their orientation (a short-axis MRI slice shows the RV on one side of the
#: LV, the side the flips change).
PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    "light": AugmentConfig(flip=0.5, rotation=0.1, scale=0.05, gamma=0.1, contrast=0.1,
                           brightness=0.1),
    "standard": _STANDARD,
    "elastic": replace(_STANDARD, elastic=2.0),
    "noflip": replace(_STANDARD, flip=0.0),
}


#: How ``--centres`` names where the training centres come from (the only source so far).
LOCATOR_PREFIX = "locator:"


def locator_dir(spec: str) -> str:
    """The run directory of a ``--centres`` value ``locator:RUN_DIR``, as an absolute path.

    Raises:
        ValueError: naming ``centres``, if the value does not have that form.

    Example:
        >>> locator_dir("locator:/runs/unet_offset")
        '/runs/unet_offset'
    """
    if not (isinstance(spec, str) and spec.startswith(LOCATOR_PREFIX)
            and spec[len(LOCATOR_PREFIX):].strip()):
        raise ValueError(f"centres must be {LOCATOR_PREFIX}RUN_DIR (a unet run directory whose "
                         f"U-Net finds the LV, e.g. one trained with --crop-offset 1); got "
                         f"{spec!r}")
    return os.path.abspath(spec[len(LOCATOR_PREFIX):])
