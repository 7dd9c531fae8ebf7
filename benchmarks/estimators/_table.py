"""The summary table and the reference check of ``estimators.py`` (its method is there)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmarks._boxes import BOXES, SIGMA, Box, cosine, vjp_of


def reference_check(box: Box, x: Tensor, v: Tensor, pairs: int, seed: int) -> dict[str, object]:
    """Large-sample antithetic ES of the smoothed VJP, with per-coordinate standard errors."""
    gen = torch.Generator().manual_seed(seed)
    total, total_sq, chunk = torch.zeros(box.d, dtype=torch.float64), 0.0, 4096
    total_sq = torch.zeros(box.d, dtype=torch.float64)
    for start in range(0, pairs, chunk):
        n = min(chunk, pairs - start)
        eps = torch.randn(n, box.d, generator=gen, dtype=torch.float64)
        diff = box.fn((x + SIGMA * eps).float()).double() - box.fn((x - SIGMA * eps).float()).double()
        per = ((diff * v).sum(-1, keepdim=True) / (2 * SIGMA)) * eps  # one estimate per pair
        total += per.sum(0)
        total_sq += (per**2).sum(0)
    mean = total / pairs
    se = ((total_sq / pairs - mean**2) / (pairs - 1)).sqrt()
    ref = vjp_of(box.smoothed, x, v).flatten()
    z = (mean - ref) / se
    return {"box": box.name, "d": box.d, "pairs": pairs, "cosine": cosine(mean, ref),
            "relative_se": float(se.norm() / ref.norm()), "max_abs_z": float(z.abs().max()),
            "fraction_abs_z_below_2": float((z.abs() < 2).double().mean())}  # fmt: skip


# ---------------------------------------------------------------------------- output
def table(results: list[dict], dims: list[int]) -> dict[str, object]:
    cols = ["black box", "reference", "estimator", "fn evals / gradient"]
    cols += [f"cosine d={d}" for d in dims] + [f"ms / gradient d={d}" for d in dims]
    rows = []
    names = list(dict.fromkeys(r["estimator"] for r in results))
    for box in BOXES:
        for ref in ("smoothed", "true"):
            for est in names:
                sel = {r["d"]: r for r in results
                       if r["box"] == box and r["estimator"] == est and f"cosine_{ref}" in r}
                if not sel:
                    continue
                evals = "2d+1" if est == "FiniteDifference" else next(iter(sel.values()))["evals_per_gradient"]
                label = f"smoothed (sigma={SIGMA})" if ref == "smoothed" else "true gradient"
                cos = [round(sel[d][f"cosine_{ref}"]["median"], 3) if d in sel else None for d in dims]
                ms = [round(1e3 * sel[d]["time_s"]["median"], 3) if d in sel else None for d in dims]
                rows.append([box, label, est, evals, *cos, *ms])
    return {"columns": cols, "rows": rows}


