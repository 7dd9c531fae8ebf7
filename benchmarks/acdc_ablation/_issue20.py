"""Issue #20's comparison at 10 / 20 / 50 labelled images: its rows (validation Dice and seconds
per run) and the differences its targets name, paired by seed."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.acdc_ablation._cells import Run, dice_cell, median_seconds, runs
from benchmarks.acdc_ablation._study import Plan, jobs_of

#: The sizes issue #20 asks about.
SIZES = (10, 20, 50)
#: Its rows (table rows of the study, in the issue's order) and their labels here.
ROWS = {
    "unet": "U-Net",
    "unet-aug": "U-Net, augmented",
    "unet-aug-noflip": "U-Net, augmented without flips",
    "unet-semi": "U-Net, mean teacher (semi-supervised)",
    "unet-aug-semi": "U-Net, augmented + mean teacher",
    "unet-dp": "U-Net+DP",
    "edpcnn": "EDPCNN (bypass)",
    "edpcnn-k3": "EDPCNN (bypass), 3 fit steps (lvseg's default)",
    "edpcnn-aug": "EDPCNN, augmented",
    "edpcnn-aug-noflip": "EDPCNN, augmented without flips",
    "edpcnn-semi": "EDPCNN, semi-supervised",
    "edpcnn-aug-semi": "EDPCNN, augmented + semi-supervised (3 fit steps)",
    "edpcnn-aug-semi-edge": "EDPCNN, augmented + semi-supervised, contour at the edge (3 fit "
                            "steps)",
    "edpcnn-aug-semi-avg": "EDPCNN, augmented + semi-supervised, contour at the edge, weight "
                           "averaging 0.99",
    "edpcnn-aug-noflip-edge": "EDPCNN at lvseg's defaults (augmented without flips, 3 fit "
                              "steps, contour at the edge)",
    "edpcnn-aug-noflip-semi": "EDPCNN, augmented without flips + semi-supervised (lvseg's "
                              "defaults with --unlabelled 10)",
    "unet-defaults-1000": "U-Net at lvseg's defaults, 1000 iterations (augmented without flips)",
    "edpcnn-defaults-1000": "EDPCNN at lvseg's defaults, 1000 iterations",
    "softdp": "EDPCNN-softDP",  # the chosen temperature is added from the records
    "es-hi": "EDPCNN-ES",
}
#: The variants that train these rows (U-Net+DP comes from the unet run).
VARIANTS = ("unet", "unet-aug", "unet-aug-noflip", "unet-semi", "unet-aug-semi", "edpcnn",
            "edpcnn-k3", "edpcnn-aug", "edpcnn-aug-noflip", "edpcnn-semi", "edpcnn-aug-semi",
            "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg", "edpcnn-aug-noflip-edge",
            "edpcnn-aug-noflip-semi", "unet-defaults-1000", "edpcnn-defaults-1000", "softdp",
            "es-hi")
#: "EDPCNN best": the bypass row with the highest mean Dice at a size; the semi-supervised
#: U-Nets, of which the best is compared.
EDPCNN = ("edpcnn", "edpcnn-k3", "edpcnn-aug", "edpcnn-aug-noflip", "edpcnn-semi",
          "edpcnn-aug-semi", "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg",
          "edpcnn-aug-noflip-edge", "edpcnn-aug-noflip-semi", "edpcnn-defaults-1000")
SEMI_UNET = ("unet-semi", "unet-aug-semi")
#: The differences the targets name: label, minuend rows, subtrahend rows (the best mean of
#: each group at a size).
DIFFERENCES = (
    ("EDPCNN best − U-Net (target at 10 and 20: ≥ +0.10)", EDPCNN, ("unet",)),
    ("EDPCNN best − best semi-supervised U-Net (target at 10 and 20: ≥ +0.03)", EDPCNN,
     SEMI_UNET),
    ("bypass − softDP (target: ≥ 0)", ("edpcnn", "edpcnn-k3"), ("softdp",)),
    ("EDPCNN best − U-Net best, augmented or not (no target: equal augmentation)", EDPCNN,
     ("unet", "unet-aug", "unet-aug-noflip", "unet-defaults-1000")),
    ("EDPCNN − U-Net, both at lvseg's defaults, 1000 iterations (paired by seed)",
     ("edpcnn-defaults-1000",), ("unet-defaults-1000",)),
    ("without flips − with (augmented U-Net; paired by seed)", ("unet-aug-noflip",),
     ("unet-aug",)),
    ("without flips − with (augmented EDPCNN; paired by seed)", ("edpcnn-aug-noflip",),
     ("edpcnn-aug",)),
)  # fmt: skip


def best(got: dict[tuple[str, int], list[Run]], rows: tuple[str, ...], size: int) -> str | None:
    """The row of ``rows`` with the highest mean Dice at ``size`` (``None``: no runs yet)."""
    have = [r for r in rows if got.get((r, size))]
    return max(have, key=lambda r: np.mean([x.dice for x in got[(r, size)]]), default=None)


def paired(a: list[Run], b: list[Run]) -> list[float]:
    """Dice of ``a`` minus Dice of ``b``, seed by seed, over the seeds both have."""
    da, db = {r.seed: r.dice for r in a}, {r.seed: r.dice for r in b}
    return [da[s] - db[s] for s in sorted(da.keys() & db.keys())]


def difference_cell(diffs: list[float], best_of: str | None = None) -> str:
    """``mean ± s.d. (n seeds)`` of paired differences, ``; best: ROW`` where the minuend was
    the best of several rows; ``-`` without a pair."""
    if not diffs:
        return "-"
    spread = f" ± {np.std(diffs, ddof=1):.3f}" if len(diffs) > 1 else ""
    seeds = "1 seed" if len(diffs) == 1 else f"{len(diffs)} seeds"
    best = f"; best: {ROWS[best_of]}" if best_of else ""
    return f"{np.mean(diffs):+.3f}{spread} ({seeds}{best})"


def temperatures(records: list[dict[str, Any]]) -> str:
    """The temperature the softdp runs trained with (chosen on validation), for the label."""
    temps = sorted({r["train_config"]["temperature"] for r in records
                    if r.get("variant") == "softdp"})  # fmt: skip
    if not temps:
        return "temperature chosen on validation"
    return "temperature " + ", ".join(f"{t:g}" for t in temps) + " (chosen on validation)"


def table(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Each row and size: ``Dice mean ± s.d. (n); median s``, then the differences."""
    got = runs(records)
    sizes = [s for s in SIZES if s in plan.sizes]
    rows = []
    for row, label in ROWS.items():
        label = f"{label}, {temperatures(records)}" if row == "softdp" else label
        cells = [label]
        for size in sizes:
            cell = got.get((row, size), [])
            secs = median_seconds(cell)
            cells.append(dice_cell(cell) + ("" if secs is None else f"; {secs:.0f} s"))
        rows.append(cells)
    for label, first, second in DIFFERENCES:
        cells = [label]
        for size in sizes:
            a, b = best(got, first, size), best(got, second, size)
            diffs = paired(got[(a, size)], got[(b, size)]) if a and b else []
            cells.append(difference_cell(diffs, a if len(first) > 1 else None))
        rows.append(cells)
    return {"columns": ["method"] + [f"{s} images" for s in sizes], "rows": rows}


def own(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of these rows' runs (for their load range)."""
    return [r for r in records if r["variant"] in VARIANTS and r["size"] in SIZES]


def progress(records: list[dict[str, Any]], plan: Plan) -> tuple[int, int]:
    """Runs of these rows done and planned."""
    planned = {j.key for j in jobs_of(plan) if j.variant in VARIANTS and j.size in SIZES}
    return len(planned & {r["key"] for r in records}), len(planned)


def method(records: list[dict[str, Any]], plan: Plan, seconds: str) -> str:
    """The method text of the result file (``seconds``: how the seconds were measured)."""
    done, planned = progress(records, plan)
    return (
        "Validation Dice (372 images, thesis split, best checkpoint) of the rows issue #20 asks "
        "about, each cell mean ± s.d. over seeds (runs in brackets) and the median seconds of "
        "a run. The rows are the study's (`acdc_ablation.json`): every method at the `lvseg "
        "train` defaults of its run's commit and the study's iterations (500 / 600 / 1000 at "
        "10 / 20 / 50 images; the rows '1000 iterations': lvseg's defaults since issue #20, "
        "1000 iterations, validation every 50 for both methods), except: augmented, "
        "`--augment standard`; semi-supervised, `--unlabelled 10` (an EMA teacher's targets on 10 unlabelled training images per "
        "iteration); EDPCNN-softDP, `--method edpcnn-softdp --temperature T`, T chosen on "
        "validation (10 images, first seed) from the grid `_study.TEMPERATURES`; EDPCNN-ES, "
        "`--method edpcnn-es` (ES-hi) with Adam 1e-3 (ES's defaults came later: `README.md`, "
        "'ES at the defaults'). U-Net+DP is the unet run's U-Net through the star DP at test. "
        "Every DP row draws its contour through the DP's chosen points, as lvseg did when the "
        "study started, except the row 'contour at the edge' (lvseg's default since: validation, "
        "the teacher's masks and the score at the edge; `README.md`, 'Where the contour is "
        "drawn'). "
        "Differences: seed by seed, over the seeds both rows ran (seeds in brackets); 'EDPCNN "
        "best' is the EDPCNN, augmented or semi-supervised row with the highest mean at that "
        "size (named in the cell), 'best semi-supervised U-Net' the better of the two "
        "mean-teacher rows, 'U-Net best' the plain or augmented U-Net row with the higher mean. "
        f"{seconds} The table fills in as the study runs: {done} of the {planned} "
        "runs of these rows are done."
    )
