"""``make demo``: EDPCNN against a U-Net on 10 bundled Sunnybrook slices, on a CPU, in minutes.

Runs the ``lvseg`` command (the same calls a user would type):

1. ``lvseg train --method edpcnn --train-size 10`` and ``--method unet`` on slices of one patient
   of the bundled Sunnybrook sample (model selection on a second patient);
2. ``lvseg evaluate --split test`` of both on every slice of the third patient (the U-Net also as
   U-Net+DP, and EDPCNN with a jittered star centre), with pipeline overlays;
3. prints a table of Dice, Hausdorff distance and ASSD (mm) and the wall time.

Everything is written to ``demo-out/`` (git-ignored; ``DEMO_OUT=folder`` to change it). A
previous ``demo-out/`` is never deleted: it is moved aside to ``demo-out.<its date and time>/``
with a message.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see lvseg.cli.main

from lvseg.cli import main  # noqa: E402

OUT = Path(os.environ.get("DEMO_OUT", "demo-out"))


def lvseg(*args: object) -> None:
    argv = [str(a) for a in args]
    print("$ lvseg " + " ".join(argv), flush=True)
    code = main(argv)
    if code:
        sys.exit(code)


def circle_baseline() -> dict[str, float]:
    """What the star centre alone gives: a disc of the training slices' mean LV radius."""
    import numpy as np

    from lvseg.metrics import evaluate_batch, summarize
    from lvseg.config import TrainConfig
    from lvseg.prepare import prepare_data

    config = json.loads((OUT / "edpcnn" / "config.json").read_text())
    prepared = prepare_data(TrainConfig(method="edpcnn", data="sunnybrook",
                                        train_size=config["train_size"]))
    data = prepared.data
    radius = float(np.sqrt(data.masks[prepared.train].sum((1, 2)) / np.pi).mean())
    test = data.subset(prepared.test)
    yy, xx = np.mgrid[: data.masks.shape[1], : data.masks.shape[2]]
    cx, cy = test.centers[:, 0, None, None], test.centers[:, 1, None, None]
    discs = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    radius_star = float(config["star"]["radius"])
    s = summarize(evaluate_batch(discs, test.masks, data.spacing, test.centers, radius_star))
    return {"dice": s["dice_mean"], "dice_std": s["dice_std"], "hd_mm": s["hd_mean"],
            "hd_std": s["hd_std"], "assd_mm": s["assd_mean"], "assd_std": s["assd_std"]}


def move_aside(out: Path) -> Path | None:
    """Rename a previous, non-empty ``out`` to ``out.<its mtime>`` (never delete); the new name."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(out.stat().st_mtime))
    target, n = out.with_name(f"{out.name}.{stamp}"), 1
    while target.exists():
        n += 1
        target = out.with_name(f"{out.name}.{stamp}-{n}")
    out.rename(target)
    return target


def run() -> None:
    start = time.perf_counter()
    moved = move_aside(OUT)
    if moved is not None:
        print(f"demo: moved the previous {OUT}/ to {moved}/ (delete it when done with it)")
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"demo: writing runs, evaluations and figures to {OUT.resolve()}/", flush=True)
    seconds = {}
    for method in ("edpcnn", "unet"):
        t0 = time.perf_counter()
        lvseg("train", "--method", method, "--data", "sunnybrook", "--train-size", 10,
              "--out", OUT / method)
        seconds[method] = time.perf_counter() - t0
    rows = [
        ("U-Net", "unet", []),
        ("U-Net+DP", "unet", ["--dp"]),
        ("EDPCNN", "edpcnn", []),
        ("EDPCNN, centre jitter 0.2 r", "edpcnn", ["--center-jitter", 0.2]),
    ]
    results = []
    for label, run_name, extra in rows:
        tag = label.split(",")[0].lower().replace("+", "-") + ("-jitter" if "," in label else "")
        jitter = "--center-jitter" in extra
        figures = [] if jitter else ["--figures", OUT / "figures" / tag, "--max-figures", 6]
        lvseg("evaluate", OUT / run_name, "--split", "test", "--json", OUT / f"{tag}.json",
              *figures, *extra)
        results.append((label, json.loads((OUT / f"{tag}.json").read_text())))

    results.append(("circle: centre + mean radius", circle_baseline()))
    total = time.perf_counter() - start
    first = results[0][1]
    print()
    print(f"Sunnybrook sample: trained on 10 slices of one patient, tested on the "
          f"{first['n']} slices of another (metrics inside the star's square)")
    print(f"{'method':<30} {'Dice':>15} {'HD (mm)':>15} {'ASSD (mm)':>15}")
    for label, r in results:
        print(f"{label:<30} {r['dice']:>7.3f} ± {r['dice_std']:<5.3f} {r['hd_mm']:>7.2f} ± "
              f"{r['hd_std']:<5.2f} {r['assd_mm']:>7.2f} ± {r['assd_std']:<5.2f}")
    print()
    print("training: " + ", ".join(f"{m} {s:.0f} s" for m, s in seconds.items())
          + f"; demo wall time {total:.0f} s")
    print(f"overlays: {OUT / 'figures'}/, training curves: {OUT}/<method>/figures/training.png")
    print(f"evaluations (JSON): {OUT}/*.json; all output is in {OUT.resolve()}/")


if __name__ == "__main__":
    run()
