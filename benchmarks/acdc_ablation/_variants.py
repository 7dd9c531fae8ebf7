"""The trained rows of ``acdc_ablation``: one :class:`Variant` per row in :data:`REGISTRY`, from
which :data:`VARIANTS`, :data:`EVALUATED`, :data:`LABELS` and the plans' per-variant settings
(:mod:`._study`) are derived.

Adding a row is one ``REGISTRY`` entry (its place there is its place in the job order) and its
name in :data:`ROWS` (the table's order; the import fails if a row is missing or unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks import _lv_runs as lv_runs

#: The surrogate setting lvseg used before issue #9 (the thesis' StarSurrogate, S = 10, 2 fit
#: steps); the study's first EDPCNN run (10 images, seed 0) used it and is kept as its own row.
OLD_SURROGATE = {"surrogate": "star", "samples": 10, "fit_steps": 2}
#: The data augmentation of the ``-aug`` rows (``lvseg train --augment``, ``lvseg.augment``).
AUGMENT = {"augment": "standard"}
#: ``standard`` without its flips (the ``-noflip`` rows): on the Sunnybrook demo the flips alone
#: made EDPCNN's training fall (``benchmarks/lv_stability/README.md``, "Augmentation on the demo
#: data"); these rows measure the flips on ACDC, paired with the ``-aug`` rows.
AUGMENT_NOFLIP = {"augment": "noflip"}
#: The temperature grid of the relaxed DP (``edpcnn-softdp``), one variant ``softdp-t<T>`` each
#: (30 and 100 added when Dice still rose from 1 to 3: a best at the edge of a grid is no choice).
TEMPERATURES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
#: Semi-supervised (issue #20): 10 unlabelled training-split images per iteration besides the
#: labelled batch, an EMA teacher's targets (``lvseg.teacher``), the other settings at the defaults.
SEMI = {"unlabelled": 10}
#: The learning rate of ``edpcnn-es`` when the ES rows ran (its default since issue #20 is
#: higher: ``benchmarks/acdc_ablation/README.md``, "ES at the defaults").
ES_LR = {"lr": 1e-3}
#: The surrogate's fit steps per iteration of the rows with ``fit_steps_before``: lvseg's default
#: when the study started (3 since ``benchmarks/lv_stability``), kept so that the rows stay what
#: they were and a run stopped before the change resumes from its checkpoint.
FIT_STEPS_BEFORE = {"fit_steps": 1}
#: Where the rows with ``edge_before`` draw the DP contour: through the DP's chosen points, as
#: lvseg did when the study started (lvseg's default since ``_edge.py`` is half a point step
#: further out, at the edge). Kept so that the table stays one protocol and a stopped run
#: resumes; ``_edge.py`` re-scores the kept runs at lvseg's default.
EDGE_BEFORE = {"edge_offset": 0.0}
#: The data augmentation of every row that does not name one (``_lv_runs.AUGMENT_BEFORE``): none,
#: lvseg's default when the study started, kept so that the rows stay what they were and a run
#: stopped before the change resumes from its checkpoint.
AUGMENT_BEFORE = lv_runs.AUGMENT_BEFORE
#: The full plan's validation period (iterations) by method: 50 for the bypass and the relaxation
#: (the thesis' value), 100 for the cheaper U-Net and ES iterations.
VAL_EVERY = {"unet": 100, "edpcnn": 50, "edpcnn-es": 100, "edpcnn-softdp": 50}


@dataclass(frozen=True)
class Variant:
    """One trained row: how it trains, where it runs and how it is scored and labelled.

    ``star`` and ``knobs`` are the StarConfig and TrainConfig settings changed from the defaults,
    before the pins (:attr:`star_settings`, :attr:`settings`). ``sizes``: the full plan's sizes,
    at the first seed unless ``every_seed`` (``None``: every size and seed; an ``es-`` row: the
    plan's ``es_sizes``, first seed); ``quick``: the quick plan's sizes of a row with ``sizes``.
    """

    method: str  # the lvseg method
    label: str  # its row in the tables
    star: dict[str, Any] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)
    sizes: tuple[int, ...] | None = None
    every_seed: bool = False
    quick: tuple[int, ...] = ()
    evaluated: tuple[str, ...] = ()  # the methods it is scored as (empty: its own)
    val_every: int = 0  # the full plan's validation period (0: the method's, VAL_EVERY)
    edge_before: bool = True  # the contour where the study started (EDGE_BEFORE)
    fit_steps_before: bool = True  # one fit step, as when the study started (FIT_STEPS_BEFORE)
    iterations: int = 0  # the full plan's iterations at each of its sizes (0: the plan's)

    def __post_init__(self) -> None:
        if not self.val_every and self.method not in VAL_EVERY:
            raise ValueError(f"method {self.method!r} has no validation period in VAL_EVERY "
                             f"({sorted(VAL_EVERY)}); give the variant val_every")
        if self.sizes is None and (self.every_seed or self.quick):
            raise ValueError(f"every_seed and quick apply to a variant with sizes; got "
                             f"every_seed={self.every_seed}, quick={self.quick} without sizes")

    @property
    def star_settings(self) -> dict[str, Any]:
        """``star`` after :data:`EDGE_BEFORE` (if ``edge_before``)."""
        return {**(EDGE_BEFORE if self.edge_before else {}), **self.star}

    @property
    def settings(self) -> dict[str, Any]:
        """``knobs`` after :data:`AUGMENT_BEFORE` and :data:`FIT_STEPS_BEFORE` (if
        ``fit_steps_before``)."""
        return {**AUGMENT_BEFORE, **(FIT_STEPS_BEFORE if self.fit_steps_before else {}),
                **self.knobs}  # fmt: skip


_K3 = {"fit_steps": 3}  # lvseg's default since the long-run stability study
#: Every trained row, in the order its jobs run (of a size and seed).
REGISTRY: dict[str, Variant] = {
    "unet": Variant("unet", "U-Net", evaluated=("unet", "unet-dp")),  # also gives U-Net+DP
    "edpcnn": Variant("edpcnn", "EDPCNN (bypass)"),
    "edpcnn-old": Variant("edpcnn", "EDPCNN, surrogate before #9 (S10 k2)", knobs=OLD_SURROGATE,
                          sizes=(10,)),
    # the ES rows ran at lvseg's ES learning rate before issue #20 (the records say so);
    # ES-lo: the DP's input pooled along the lines (``StarConfig.pool``)
    "es-hi": Variant("edpcnn-es", "EDPCNN-ES-hi", knobs=ES_LR),
    "es-lo": Variant("edpcnn-es", "EDPCNN-ES-lo (pool 4)", star={"pool": 4}, knobs=ES_LR),
    "es-lo2": Variant("edpcnn-es", "EDPCNN-ES-lo, pool 2", star={"pool": 2}, knobs=ES_LR,
                      sizes=(10, 20)),
    "unet-aug": Variant("unet", "U-Net, augmented (standard)", knobs=AUGMENT,
                        sizes=(10, 20, 50), every_seed=True),
    "edpcnn-aug": Variant("edpcnn", "EDPCNN (bypass), augmented (standard)", knobs=AUGMENT,
                          sizes=(10, 20, 50), every_seed=True),
    "unet-aug-noflip": Variant("unet", "U-Net, augmented without flips (noflip)",
                               knobs=AUGMENT_NOFLIP, sizes=(10, 20), every_seed=True),
    "edpcnn-aug-noflip": Variant("edpcnn", "EDPCNN (bypass), augmented without flips (noflip)",
                                 knobs=AUGMENT_NOFLIP, sizes=(10, 20), every_seed=True),
    # the relaxation control (issue #20): its temperature chosen on validation among these
    # (10 images, seed 0), then the softdp rows with the method's default set to the winner
    **{f"softdp-t{t:g}": Variant("edpcnn-softdp", f"EDPCNN-softDP, temperature {t:g}",
                                 knobs={"temperature": t}, sizes=(10,))
       for t in TEMPERATURES},
    "softdp": Variant("edpcnn-softdp", "EDPCNN-softDP (relaxation)", sizes=(10, 20, 50),
                      every_seed=True, quick=(10,)),
    "edpcnn-semi": Variant("edpcnn", "EDPCNN, teacher's DP pseudo-labels on unlabelled images",
                           knobs=SEMI, sizes=(10, 20, 50), every_seed=True, quick=(10,)),
    "unet-semi": Variant("unet", "U-Net, mean teacher on unlabelled images", knobs=SEMI,
                         sizes=(10, 20, 50), every_seed=True, quick=(10,)),
    # EDPCNN at lvseg's defaults since the long-run stability study (3 surrogate fit steps)
    "edpcnn-k3": Variant("edpcnn", "EDPCNN (bypass), 3 fit steps (lvseg's default since "
                         "lv_stability)", knobs=_K3, sizes=(10, 20, 50), every_seed=True,
                         fit_steps_before=False),
    # the two paired winners at 10 images together (augmentation and the teacher's DP
    # targets), at lvseg's defaults otherwise (3 fit steps): is their gain additive?
    "edpcnn-aug-semi": Variant("edpcnn", "EDPCNN, augmented + teacher's DP pseudo-labels, 3 fit "
                               "steps", knobs={**_K3, **AUGMENT, **SEMI}, sizes=(10,),
                               every_seed=True, fit_steps_before=False),
    # the same unlabelled images and augmentation given to the U-Net (a mean teacher), its control
    "unet-aug-semi": Variant("unet", "U-Net, augmented + mean teacher on unlabelled images",
                             knobs={**AUGMENT, **SEMI}, sizes=(10,), every_seed=True,
                             fit_steps_before=False),
    # edpcnn-aug-semi at lvseg's current defaults: the contour at the edge for validation (the
    # checkpoint), the teacher's masks and the score
    "edpcnn-aug-semi-edge": Variant(
        "edpcnn", "EDPCNN, augmented + teacher's DP pseudo-labels, 3 fit steps, contour at the "
        "edge (lvseg's defaults otherwise)", knobs={**_K3, **AUGMENT, **SEMI}, sizes=(10, 20),
        every_seed=True, edge_before=False, fit_steps_before=False),
    # the same with weight averaging (--average 0.99): validation and best.pt take an EMA of the
    # U-Net's weights, to steady the curves whose best-of-ten selection moved by +-0.02
    "edpcnn-aug-semi-avg": Variant(
        "edpcnn", "EDPCNN, augmented + teacher's DP pseudo-labels, contour at the edge, weight "
        "averaging 0.99", knobs={**_K3, **AUGMENT, **SEMI, "average": 0.99}, sizes=(10, 20),
        every_seed=True, edge_before=False, fit_steps_before=False),
    # lvseg's defaults since the flips left them (augmented without flips, 3 fit steps, the
    # contour at the edge) with the teacher's DP targets: the candidate for --unlabelled's
    # default; then the same without them, its pair (EDPCNN at lvseg's defaults, the study's
    # iterations; after it in the job order because it was added while it ran)
    "edpcnn-aug-noflip-semi": Variant(
        "edpcnn", "EDPCNN, augmented without flips + teacher's DP pseudo-labels (lvseg's defaults "
        "with --unlabelled 10)", knobs={**_K3, **AUGMENT_NOFLIP, **SEMI}, sizes=(10, 20),
        every_seed=True, edge_before=False, fit_steps_before=False),
    "edpcnn-aug-noflip-edge": Variant(
        "edpcnn", "EDPCNN at lvseg's defaults (augmented without flips, 3 fit steps, contour at "
        "the edge)", knobs={**_K3, **AUGMENT_NOFLIP}, sizes=(10, 20), every_seed=True,
        edge_before=False, fit_steps_before=False),
    # lvseg train's defaults since issue #20's decision (1000 iterations for every method; the
    # study's 500 at 10 images had EDPCNN's and the augmented U-Net's curves still rising), both
    # methods validated every 50 iterations, paired by seed: the comparison at the defaults
    "edpcnn-defaults-1000": Variant(
        "edpcnn", "EDPCNN at lvseg's defaults, 1000 iterations (augmented without flips, 3 fit "
        "steps, contour at the edge)", knobs={**_K3, **AUGMENT_NOFLIP}, sizes=(10,),
        every_seed=True, edge_before=False, fit_steps_before=False, iterations=1000),
    "unet-defaults-1000": Variant(
        "unet", "U-Net at lvseg's defaults, 1000 iterations (augmented without flips)",
        knobs=AUGMENT_NOFLIP, sizes=(10,), every_seed=True, val_every=50, edge_before=False,
        fit_steps_before=False, iterations=1000),
}  # fmt: skip
#: Each trained variant as (lvseg method, star settings, other TrainConfig settings), the pins
#: applied (:attr:`Variant.star_settings`, :attr:`Variant.settings`); its order is the job order.
VARIANTS = {n: (v.method, v.star_settings, v.settings) for n, v in REGISTRY.items()}
#: What a trained variant is evaluated as (the unet run also gives U-Net+DP).
EVALUATED = {n: v.evaluated or (v.method,) for n, v in REGISTRY.items()}
#: The relaxation's variants: the temperature grid, then ``softdp`` (which trains with its best).
SOFTDP = tuple(n for n, v in REGISTRY.items() if v.method == "edpcnn-softdp")
#: The rows that are no trained variant of their own: the label-free baselines and U-Net+DP.
_OTHER_LABELS = {"untrained-dp": "DP on an untrained U-Net (no labels)",
                 "mean-disc": "disc of the mean radius (no labels)", "unet-dp": "U-Net+DP"}
LABELS = {**_OTHER_LABELS, **{n: v.label for n, v in REGISTRY.items()}}
#: The order of the tables' rows.
ROWS = ("untrained-dp", "mean-disc", "unet", "unet-dp", "edpcnn", "edpcnn-k3", "edpcnn-old",
        "es-hi", "es-lo", "es-lo2", "unet-aug", "edpcnn-aug", "unet-aug-noflip",
        "edpcnn-aug-noflip", "unet-semi", "edpcnn-semi",
        "unet-aug-semi", "edpcnn-aug-semi", "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg",
        "edpcnn-aug-noflip-edge", "edpcnn-aug-noflip-semi", "unet-defaults-1000",
        "edpcnn-defaults-1000", "softdp", *SOFTDP[:-1])


def _check_rows(rows: tuple[str, ...], registry: dict[str, Variant]) -> None:
    """Each variant of ``registry`` and each other row has one row of ``rows``."""
    names = set(registry) | set(_OTHER_LABELS)
    if sorted(rows) != sorted(names):
        missing, unknown = sorted(names - set(rows)), sorted(set(rows) - names)
        twice = sorted({r for r in rows if rows.count(r) > 1})
        raise ValueError(f"ROWS must list each variant of REGISTRY and {sorted(_OTHER_LABELS)} "
                         f"once; missing {missing}, unknown {unknown}, listed twice {twice}")


_check_rows(ROWS, REGISTRY)
