"""The plan of ``acdc_ablation`` (its sizes, seeds and jobs, in the order they run); the trained
variants are in :mod:`._variants`, the tables and figures in :mod:`._outputs`.

Nothing here needs ``lvseg``: ``__main__`` trains and evaluates, this module says what to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# the variants' facts live in ._variants; the names other modules read are re-exported here
from benchmarks.acdc_ablation._variants import (AUGMENT_BEFORE, EDGE_BEFORE, EVALUATED, LABELS,
                                                REGISTRY, ROWS, SOFTDP, TEMPERATURES, VAL_EVERY,
                                                VARIANTS)

__all__ = ["AUGMENT_BEFORE", "CEILING_POOLS", "EDGE_BEFORE", "EVALUATED", "FULL", "LABELS",
           "QUICK", "ROWS", "SOFTDP", "TEMPERATURES", "THESIS", "VARIANTS", "Job", "Plan",
           "after_of", "chosen", "jobs_of"]

#: Thesis Table 5.1, validation Dice at 10 / 20 / 50 / 100 / 200 training images.
THESIS = {
    "unet": {10: 0.5115, 20: 0.6511, 50: 0.7321, 100: 0.7990, 200: 0.8392},
    "unet-dp": {10: 0.6025, 20: 0.6558, 50: 0.7296, 100: 0.8135, 200: 0.8558},
    "edpcnn": {10: 0.7270, 20: 0.7569, 50: 0.8015, 100: 0.8328, 200: 0.8701},
}
#: The star's resolution ceilings: the DP on the true mask (minus 1/2), the DP's input pooled
#: over blocks of F points along each line as ES-lo pools it (``StarConfig.pool``).
CEILING_POOLS = (1, 2, 4)


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
    variant_iterations: dict[str, int] = field(default_factory=dict)  # overrides ``iterations``


# Iterations: the validation Dice of the first runs (unet and edpcnn, 10 and 20 images) levelled
# off well before these; each record keeps its curve and best iteration to check it per size.
# The per-variant settings are each variant's entry of ``_variants.REGISTRY``.
FULL = Plan(
    sizes=(10, 20, 50, 100, 200),
    seeds={10: (0, 1, 2), 20: (0, 1, 2), 50: (0, 1), 100: (0,), 200: (0,)},
    iterations={10: 500, 20: 600, 50: 1000, 100: 1500, 200: 2000},
    val_every={n: v.val_every or VAL_EVERY[v.method] for n, v in REGISTRY.items()},
    es_sizes=(10, 20, 50, 100),
    only={n: v.sizes for n, v in REGISTRY.items() if v.sizes is not None},
    every_seed=tuple(n for n, v in REGISTRY.items() if v.every_seed),
    jitter_sizes=(10, 100),
    variant_iterations={n: v.iterations for n, v in REGISTRY.items() if v.iterations},
)
QUICK = Plan(
    sizes=(10,), seeds={10: (0,)}, iterations={10: 3}, val_every={n: 3 for n in REGISTRY},
    es_sizes=(10,), only={n: v.quick for n, v in REGISTRY.items() if v.sizes is not None},
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
        return [Job(size, seed, v, plan.variant_iterations.get(v, plan.iterations[size]))
                for v in names]

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
