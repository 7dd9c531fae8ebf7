"""The plan of ``acdc_ablation`` (its variants and jobs, in the order they run); the tables and
figures are in :mod:`._outputs`.

Nothing here needs ``lvseg``: ``__main__`` trains and evaluates, this module says what to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks import _lv_runs as lv_runs

#: Thesis Table 5.1, validation Dice at 10 / 20 / 50 / 100 / 200 training images.
THESIS = {
    "unet": {10: 0.5115, 20: 0.6511, 50: 0.7321, 100: 0.7990, 200: 0.8392},
    "unet-dp": {10: 0.6025, 20: 0.6558, 50: 0.7296, 100: 0.8135, 200: 0.8558},
    "edpcnn": {10: 0.7270, 20: 0.7569, 50: 0.8015, 100: 0.8328, 200: 0.8701},
}
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
#: The surrogate's fit steps per iteration of every variant but ``edpcnn-k3``: lvseg's default
#: when the study started (3 since ``benchmarks/lv_stability``), kept so that the rows stay what
#: they were and a run stopped before the change resumes from its checkpoint.
FIT_STEPS_BEFORE = {"fit_steps": 1}
#: Where every row draws the DP contour: through the DP's chosen points, as lvseg did when the
#: study started (lvseg's default since ``_edge.py`` is half a point step further out, at the
#: edge). Kept for every row so that the table stays one protocol and a stopped run resumes;
#: ``_edge.py`` re-scores the kept runs at lvseg's default.
EDGE_BEFORE = {"edge_offset": 0.0}
#: The data augmentation of every row without :data:`AUGMENT` (``_lv_runs.AUGMENT_BEFORE``):
#: none, lvseg's default when the study started, kept so that the rows stay what they were and a
#: run stopped before the change resumes from its checkpoint.
AUGMENT_BEFORE = lv_runs.AUGMENT_BEFORE
#: What each trained variant is: the lvseg method, the star settings changed from the
#: TrainConfig defaults (ES-lo: the DP's input pooled along the lines, ``StarConfig.pool``) and
#: other TrainConfig settings changed from the defaults (after :data:`FIT_STEPS_BEFORE`; every
#: row after :data:`AUGMENT_BEFORE`).
_VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "unet": ("unet", {}, {}),
    "edpcnn": ("edpcnn", {}, {}),
    "edpcnn-old": ("edpcnn", {}, OLD_SURROGATE),
    # the ES rows ran at lvseg's ES learning rate before issue #20 (the records say so)
    "es-hi": ("edpcnn-es", {}, ES_LR),
    "es-lo": ("edpcnn-es", {"pool": 4}, ES_LR),
    "es-lo2": ("edpcnn-es", {"pool": 2}, ES_LR),
    "unet-aug": ("unet", {}, AUGMENT),
    "edpcnn-aug": ("edpcnn", {}, AUGMENT),
    "unet-aug-noflip": ("unet", {}, AUGMENT_NOFLIP),
    "edpcnn-aug-noflip": ("edpcnn", {}, AUGMENT_NOFLIP),
    # the relaxation control (issue #20): its temperature chosen on validation among these
    # (10 images, seed 0), then the softdp rows with the method's default set to the winner
    **{f"softdp-t{t:g}": ("edpcnn-softdp", {}, {"temperature": t}) for t in TEMPERATURES},
    "softdp": ("edpcnn-softdp", {}, {}),
    "edpcnn-semi": ("edpcnn", {}, SEMI),
    "unet-semi": ("unet", {}, SEMI),
}
VARIANTS = {v: (method, {**EDGE_BEFORE, **star}, {**FIT_STEPS_BEFORE, **knobs})
            for v, (method, star, knobs) in _VARIANTS.items()}
#: EDPCNN at lvseg's defaults since the long-run stability study (3 surrogate fit steps).
VARIANTS["edpcnn-k3"] = ("edpcnn", EDGE_BEFORE, {"fit_steps": 3})
#: The two paired winners at 10 images together (augmentation and the teacher's DP targets), at
#: lvseg's defaults otherwise (3 fit steps): is their gain additive?
VARIANTS["edpcnn-aug-semi"] = ("edpcnn", EDGE_BEFORE, {"fit_steps": 3, **AUGMENT, **SEMI})
#: The same unlabelled images and augmentation given to the U-Net (a mean teacher), its control.
VARIANTS["unet-aug-semi"] = ("unet", EDGE_BEFORE, {**AUGMENT, **SEMI})
#: ``edpcnn-aug-semi`` at lvseg's current defaults: the contour at the edge for validation (the
#: checkpoint), the teacher's masks and the score; the one row not scored at ``EDGE_BEFORE``.
VARIANTS["edpcnn-aug-semi-edge"] = ("edpcnn", {}, VARIANTS["edpcnn-aug-semi"][2])
#: The same with weight averaging (``--average 0.99``): validation and ``best.pt`` take an EMA of
#: the U-Net's weights, to steady the curves whose best-of-ten selection moved by +-0.02.
VARIANTS["edpcnn-aug-semi-avg"] = ("edpcnn", {}, {**VARIANTS["edpcnn-aug-semi"][2],
                                                  "average": 0.99})
VARIANTS = {v: (method, star, {**AUGMENT_BEFORE, **knobs})
            for v, (method, star, knobs) in VARIANTS.items()}
#: What a trained variant is evaluated as (the unet run also gives U-Net+DP).
EVALUATED = {"unet": ("unet", "unet-dp"), "edpcnn": ("edpcnn",), "edpcnn-old": ("edpcnn",),
             "edpcnn-k3": ("edpcnn",), "edpcnn-aug-semi": ("edpcnn",),
             "unet-aug-semi": ("unet",), "edpcnn-aug-semi-edge": ("edpcnn",),
             "edpcnn-aug-semi-avg": ("edpcnn",),
             "es-hi": ("edpcnn-es",), "es-lo": ("edpcnn-es",), "es-lo2": ("edpcnn-es",),
             "unet-aug": ("unet",), "edpcnn-aug": ("edpcnn",),
             "unet-aug-noflip": ("unet",), "edpcnn-aug-noflip": ("edpcnn",),
             "edpcnn-semi": ("edpcnn",), "unet-semi": ("unet",),
             **{v: (m,) for v, (m, _, _) in VARIANTS.items() if m == "edpcnn-softdp"}}  # fmt: skip
SOFTDP = tuple(v for v, (m, _, _) in VARIANTS.items() if m == "edpcnn-softdp")
ROWS = ("untrained-dp", "mean-disc", "unet", "unet-dp", "edpcnn", "edpcnn-k3", "edpcnn-old",
        "es-hi", "es-lo", "es-lo2", "unet-aug", "edpcnn-aug", "unet-aug-noflip",
        "edpcnn-aug-noflip", "unet-semi", "edpcnn-semi",
        "unet-aug-semi", "edpcnn-aug-semi", "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg",
        "softdp", *SOFTDP[:-1])
#: The star's resolution ceilings: the DP on the true mask (minus 1/2), the DP's input pooled
#: over blocks of F points along each line as ES-lo pools it (``StarConfig.pool``).
CEILING_POOLS = (1, 2, 4)
LABELS = {"untrained-dp": "DP on an untrained U-Net (no labels)",
          "mean-disc": "disc of the mean radius (no labels)", "unet": "U-Net",
          "unet-dp": "U-Net+DP", "edpcnn": "EDPCNN (bypass)",
          "edpcnn-k3": "EDPCNN (bypass), 3 fit steps (lvseg's default since lv_stability)",
          "edpcnn-old": "EDPCNN, surrogate before #9 (S10 k2)", "es-hi": "EDPCNN-ES-hi",
          "es-lo": "EDPCNN-ES-lo (pool 4)", "es-lo2": "EDPCNN-ES-lo, pool 2",
          "unet-aug": "U-Net, augmented (standard)",
          "edpcnn-aug": "EDPCNN (bypass), augmented (standard)",
          "unet-aug-noflip": "U-Net, augmented without flips (noflip)",
          "edpcnn-aug-noflip": "EDPCNN (bypass), augmented without flips (noflip)",
          "unet-semi": "U-Net, mean teacher on unlabelled images",
          "edpcnn-semi": "EDPCNN, teacher's DP pseudo-labels on unlabelled images",
          "edpcnn-aug-semi": "EDPCNN, augmented + teacher's DP pseudo-labels, 3 fit steps",
          "unet-aug-semi": "U-Net, augmented + mean teacher on unlabelled images",
          "edpcnn-aug-semi-edge": "EDPCNN, augmented + teacher's DP pseudo-labels, 3 fit steps, "
                                  "contour at the edge (lvseg's defaults otherwise)",
          "edpcnn-aug-semi-avg": "EDPCNN, augmented + teacher's DP pseudo-labels, contour at the "
                                 "edge, weight averaging 0.99",
          "softdp": "EDPCNN-softDP (relaxation)",
          **{f"softdp-t{t:g}": f"EDPCNN-softDP, temperature {t:g}"
             for t in TEMPERATURES}}  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """Sizes, seeds, iterations, validation period and which variants run where."""

    sizes: tuple[int, ...]
    seeds: dict[int, tuple[int, ...]]  # size -> seeds
    iterations: dict[int, int]  # size -> iterations (every variant alike)
    val_every: dict[str, int]  # variant -> validate every K iterations
    es_sizes: tuple[int, ...]  # sizes with the ES variants (first seed)
    only: dict[str, tuple[int, ...]]  # variants run only at these sizes (first seed)
    jitter_sizes: tuple[int, ...]  # edpcnn sizes evaluated with jittered centres (Fig. 5.4)
    jitters: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    test_deltas: tuple[int, ...] = (2,)  # the jitter study again with the DP's delta at test
    val_subset: int = 0  # 0: all validation images; else every k-th (quick runs)
    train_curve_images: int = 50  # training images scored at each validation (Fig. 5.5)
    extra: dict[str, Any] = field(default_factory=dict)
    every_seed: tuple[str, ...] = ()  # variants of ``only`` that run every seed of their sizes


# Iterations: the validation Dice of the first runs (unet and edpcnn, 10 and 20 images) levelled
# off well before these; each record keeps its curve and best iteration to check it per size.
FULL = Plan(
    sizes=(10, 20, 50, 100, 200),
    seeds={10: (0, 1, 2), 20: (0, 1, 2), 50: (0, 1), 100: (0,), 200: (0,)},
    iterations={10: 500, 20: 600, 50: 1000, 100: 1500, 200: 2000},
    val_every={"unet": 100, "edpcnn": 50, "edpcnn-old": 50, "es-hi": 100, "es-lo": 100,
               "es-lo2": 100, "unet-aug": 100, "edpcnn-aug": 50, "unet-aug-noflip": 100,
               "edpcnn-aug-noflip": 50, "edpcnn-semi": 50,
               "unet-semi": 100, "edpcnn-k3": 50, "edpcnn-aug-semi": 50,
               "unet-aug-semi": 100, "edpcnn-aug-semi-edge": 50, "edpcnn-aug-semi-avg": 50,
               **{v: 50 for v in SOFTDP}},
    es_sizes=(10, 20, 50, 100),
    only={"edpcnn-old": (10,), "es-lo2": (10, 20), "unet-aug": (10, 20, 50),
          "edpcnn-aug": (10, 20, 50), "unet-aug-noflip": (10, 20), "edpcnn-aug-noflip": (10, 20),
          "edpcnn-semi": (10, 20, 50), "unet-semi": (10, 20, 50),
          "softdp": (10, 20, 50), "edpcnn-k3": (10, 20, 50), "edpcnn-aug-semi": (10,),
          "unet-aug-semi": (10,), "edpcnn-aug-semi-edge": (10, 20),
          "edpcnn-aug-semi-avg": (10, 20), **{v: (10,) for v in SOFTDP[:-1]}},
    every_seed=("unet-aug", "edpcnn-aug", "unet-aug-noflip", "edpcnn-aug-noflip", "edpcnn-semi",
                "unet-semi", "softdp", "edpcnn-k3", "edpcnn-aug-semi", "unet-aug-semi",
                "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg"),
    jitter_sizes=(10, 100),
)
QUICK = Plan(
    sizes=(10,), seeds={10: (0,)}, iterations={10: 3},
    val_every={"unet": 3, "edpcnn": 3, "edpcnn-old": 3, "es-hi": 3, "es-lo": 3, "es-lo2": 3,
               "unet-aug": 3, "edpcnn-aug": 3, "unet-aug-noflip": 3, "edpcnn-aug-noflip": 3,
               "edpcnn-semi": 3, "unet-semi": 3, "edpcnn-k3": 3,
               "edpcnn-aug-semi": 3, "unet-aug-semi": 3, "edpcnn-aug-semi-edge": 3,
               "edpcnn-aug-semi-avg": 3,
               **{v: 3 for v in SOFTDP}},
    es_sizes=(10,), only={"edpcnn-old": (), "es-lo2": (), "unet-aug": (), "edpcnn-aug": (),
                          "unet-aug-noflip": (), "edpcnn-aug-noflip": (),
                          "edpcnn-semi": (10,), "unet-semi": (10,), "softdp": (10,),
                          "edpcnn-k3": (), "edpcnn-aug-semi": (), "unet-aug-semi": (),
                          "edpcnn-aug-semi-edge": (), "edpcnn-aug-semi-avg": (),
                          **{v: () for v in SOFTDP[:-1]}},
    jitter_sizes=(10,), jitters=(0.0, 0.2), val_subset=4, train_curve_images=5,
)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One training run (``variant``), the label-free baselines of a size and seed, or the
    star's resolution ceilings (``"ceilings"``, size 0)."""

    size: int
    seed: int
    variant: str  # a VARIANTS key, "baselines", "ceilings" or "jitter-delta<D>"
    iterations: int = 0

    @property
    def key(self) -> str:
        return f"n={self.size}/seed={self.seed}/{self.variant}/it={self.iterations}"


def jobs_of(plan: Plan) -> list[Job]:
    """Most informative first: the baselines (minutes in all), the smallest size (every seed
    and variant: issue #20's target rests on its seeds), the second size (seed 0), EDPCNN at
    the jitter sizes and their jitter study with the test deltas, then the remaining sizes and
    seeds (smallest first)."""
    def trained(size: int, seed: int) -> list[Job]:
        first = seed == plan.seeds[size][0]
        names = [v for v in VARIANTS if v in ("unet", "edpcnn") or
                 (v in plan.only and size in plan.only[v] and (first or v in plan.every_seed)) or
                 (v.startswith("es-") and v not in plan.only and size in plan.es_sizes and first)]
        return [Job(size, seed, v, plan.iterations[size]) for v in names]

    small = plan.sizes[0]
    first = [j for seed in plan.seeds[small] for j in trained(small, seed)]
    first += [j for s in plan.sizes[1:2] for j in trained(s, plan.seeds[s][0])]
    base = [Job(s, seed, "baselines") for s in plan.sizes for seed in plan.seeds[s]]
    base.append(Job(0, 0, "ceilings"))
    jitter = [Job(s, plan.seeds[s][0], "edpcnn", plan.iterations[s]) for s in plan.jitter_sizes]
    rest = [j for s in plan.sizes for seed in plan.seeds[s] for j in trained(s, seed)]
    # evaluations of the jitter runs (each waits for its edpcnn run: a Dask dependency)
    test_delta = [Job(j.size, j.seed, f"jitter-delta{d}", j.iterations) for j in jitter
                  for d in plan.test_deltas]  # fmt: skip
    out: list[Job] = []
    for job in base + first + jitter + test_delta + rest:
        if job not in out:
            out.append(job)
    return out


def after_of(job: Job, plan: Plan) -> tuple[str, ...]:
    """The keys of the runs ``job`` waits for: a ``jitter-delta`` job its edpcnn run; a
    ``softdp`` run the plan's temperature grid (``softdp-t*``), whose best it trains with."""
    if job.variant.startswith("jitter-delta"):
        return (Job(job.size, job.seed, "edpcnn", job.iterations).key,)
    if job.variant == "softdp":
        return tuple(j.key for j in jobs_of(plan) if j.variant in SOFTDP[:-1])
    return ()


def chosen(job: Job, after: list[dict[str, Any]]) -> dict[str, Any]:
    """TrainConfig settings of ``job`` chosen on validation from the records of
    :func:`after_of`: for ``softdp``, the grid's temperature with the best validation Dice (none
    without a grid: the method's default)."""
    if job.variant != "softdp" or not after:
        return {}
    best = max(after, key=lambda r: r["evaluations"]["edpcnn-softdp"]["dice"])
    return {"temperature": best["train_config"]["temperature"]}
