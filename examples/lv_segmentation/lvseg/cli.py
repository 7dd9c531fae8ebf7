"""The ``lvseg`` command: ``train``, ``evaluate`` and ``predict`` (``lvseg <command> --help``).

Errors the user can fix (a missing data folder, an existing run directory, a broken checkpoint,
a star centre outside the image, ...) are printed as one ``lvseg: error: ...`` line with exit
status 2; nothing is overwritten.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["build_parser", "main"]

_DEFAULTS: dict[str, Any] = {}


def _defaults() -> dict[str, Any]:
    if not _DEFAULTS:
        from lvseg.train import TrainConfig

        config = TrainConfig(method="edpcnn")
        _DEFAULTS.update(config.to_dict())
    return _DEFAULTS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lvseg`` (every option is documented in ``--help``)."""
    from lvseg.train import DEFAULT_ITERATIONS

    d = _defaults()
    star = d["star"]
    parser = argparse.ArgumentParser(
        prog="lvseg",
        description="Left-ventricle segmentation of short-axis cardiac MRI with EDPCNN: a U-Net "
        "trained end to end through a star-pattern dynamic program (diffbypass example).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # ------------------------------------------------------------------ train
    t = sub.add_parser(
        "train", help="train a method into a run directory",
        description="Train one method. Writes RUN_DIR/config.json, metrics.jsonl, last.pt (every "
        "--checkpoint-every iterations, atomically), best.pt (best validation Dice) and "
        "figures/training.png. Defaults: the best we reached for --train-size 10 on 2 CPU cores "
        "in a few minutes (thesis values in brackets).",
    )  # fmt: skip
    t.add_argument("--method", required=True, choices=["unet", "unet-dp", "edpcnn", "edpcnn-es"],
                   help="unet: U-Net with BCE + soft Dice; unet-dp: the same training, star DP "
                   "applied at test time; edpcnn: U-Net trained through the DP with the "
                   "differentiable bypass (thesis Algorithm 3); edpcnn-es: the same with ES "
                   "(required)")
    t.add_argument("--data", default=None, choices=["sunnybrook", "acdc", "synthetic"],
                   help="dataset (default: sunnybrook)")
    t.add_argument("--data-dir", metavar="DIR", default=None,
                   help="dataset folder (sunnybrook: default the bundled 3-patient sample; "
                   "acdc: the training/ folder; synthetic: none)")
    t.add_argument("--train-size", metavar="N", default=None, type=_size,
                   help=f"telescopic training subset: N slices, or 'all' (default {d['train_size']})")
    t.add_argument("--seed", metavar="S", type=int, default=None, help=f"training seed (default {d['seed']})")
    t.add_argument("--split-seed", metavar="S", type=int, default=None,
                   help=f"seed of the patient split and subset shuffle (default {d['split_seed']})")
    t.add_argument("--iterations", metavar="K", type=int, default=None,
                   help="training iterations [20000] (default: "
                   + ", ".join(f"{m} {n}" for m, n in DEFAULT_ITERATIONS.items()) + ")")
    t.add_argument("--batch-size", metavar="B", type=int, default=None,
                   help=f"images per iteration [10] (default {d['batch_size']})")
    t.add_argument("--lr", metavar="LR", type=float, default=None,
                   help=f"Adam learning rate of the U-Net [1e-4] (default {d['lr']})")
    t.add_argument("--val-every", metavar="K", type=int, default=None,
                   help=f"validation Dice every K iterations [50] (default {d['val_every']})")
    t.add_argument("--checkpoint-every", metavar="K", type=int, default=None,
                   help=f"write last.pt every K iterations (default {d['checkpoint_every']})")
    t.add_argument("--unet-channels", metavar="C", type=int, default=None,
                   help=f"U-Net base channels [64] (default {d['unet_channels']})")
    t.add_argument("--unet-depth", metavar="D", type=int, default=None,
                   help=f"U-Net down-samplings [4] (default {d['unet_depth']})")
    t.add_argument("--unet-norm", default=None, choices=["group", "batch", "none"],
                   help=f"U-Net normalisation [none] (default {d['unet_norm']})")
    t.add_argument("--n-lines", metavar="N", type=int, default=None,
                   help=f"star lines N [25] (default {star['n_lines']})")
    t.add_argument("--n-points", metavar="M", type=int, default=None,
                   help=f"points per line M [65] (default {star['n_points']})")
    t.add_argument("--radius", metavar="PX", type=float, default=None,
                   help=f"star radius in pixels [65] (default {star['radius']})")
    t.add_argument("--delta", metavar="D", type=int, default=None,
                   help=f"DP smoothness delta [1] (default {star['delta']})")
    t.add_argument("--smoothing", metavar="W", type=int, default=None,
                   help=f"moving-average width on the DP indices [~N/4] (default {star['smoothing']})")
    t.add_argument("--interpolation", default=None, choices=["nearest", "bilinear"],
                   help=f"warp interpolation [nearest] (default {star['interpolation']})")
    t.add_argument("--jitter", metavar="F", type=float, default=None,
                   help="training star-centre jitter: s.d. as a fraction of the object radius, "
                   f"truncated to the object [1] (default {d['jitter']})")
    t.add_argument("--rotation", metavar="RAD", type=float, default=None,
                   help=f"training star rotation, uniform in +-R rad [0.5] (default {d['rotation']})")
    t.add_argument("--sigma", metavar="SIGMA", type=float, default=None,
                   help=f"surrogate exploration / ES noise scale [1] (default {d['sigma']})")
    t.add_argument("--samples", metavar="S", type=int, default=None,
                   help=f"noise samples per input S [10] (default {d['samples']})")
    t.add_argument("--fit-steps", metavar="K", type=int, default=None,
                   help=f"surrogate fit steps per iteration [10] (default {d['fit_steps']})")
    t.add_argument("--surrogate-lr", metavar="LR", type=float, default=None,
                   help=f"surrogate Adam learning rate (default {d['surrogate_lr']})")
    t.add_argument("--surrogate-channels", metavar="C", type=int, default=None,
                   help=f"StarSurrogate base channels [8] (default {d['surrogate_channels']})")
    t.add_argument("--synthetic-slices", metavar="N", type=int, default=None,
                   help=f"phantoms generated for --data synthetic (default {d['synthetic_slices']})")
    t.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR exactly from its last.pt (only --iterations may change)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory; must not exist (or be empty) unless --resume")

    # ------------------------------------------------------------------ evaluate
    e = sub.add_parser(
        "evaluate", help="Dice, HD, HD95 and ASSD of a run's best checkpoint",
        description="Evaluate RUN_DIR/best.pt inside the square that tightly holds the star "
        "(thesis protocol), star centred at the LV centre of mass (optionally jittered).",
    )  # fmt: skip
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    e.add_argument("--data", default=None, choices=["sunnybrook", "acdc", "synthetic"],
                   help="dataset (default: the run's)")
    e.add_argument("--data-dir", default=None, metavar="DIR",
                   help="dataset folder (default: the run's)")
    e.add_argument("--split", default="test", choices=["val", "test", "all"],
                   help="patients to evaluate; 'all' = every usable slice (default test)")
    e.add_argument("--center-jitter", type=float, default=0.0, metavar="R",
                   help="jitter the star centre: s.d. R x object radius, kept inside the object "
                   "(default 0)")
    e.add_argument("--seed", type=int, default=0, help="seed of the centre jitter (default 0)")
    e.add_argument("--dp", action="store_true",
                   help="evaluate a unet run as U-Net+DP: the star DP on its probability map "
                   "(the same weights; what a unet-dp run does)")
    e.add_argument("--json", default=None, metavar="FILE",
                   help="write the results (means, std, per image) as JSON")
    e.add_argument("--figures", default=None, metavar="DIR",
                   help="write pipeline overlays (thesis fig. 4.3) as PNGs into DIR")
    e.add_argument("--max-figures", type=int, default=12, metavar="N",
                   help="at most this many PNGs (default 12)")

    # ------------------------------------------------------------------ predict
    p = sub.add_parser(
        "predict", help="segment new slices given the LV centre",
        description="Segment DICOM, NIfTI (.nii/.nii.gz) or .npy slices with RUN_DIR/best.pt. "
        "Writes <name>_mask.png, <name>_mask.npy and <name>_overlay.png per image into DIR.",
    )  # fmt: skip
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="DICOM, NIfTI (.nii, .nii.gz) or .npy slices")
    p.add_argument("--center", required=True, type=_center, metavar="X,Y",
                   help="LV centre in pixels of the image, from 0: x = column, y = row (NIfTI: "
                   "voxel j,i). Click the cavity's middle in a viewer, or take the centroid of a "
                   "rough mask; check it on <name>_overlay.png")
    p.add_argument("--spacing", type=float, default=None, metavar="MM",
                   help="pixel size in mm for .npy images (default: the training spacing 1.37)")
    p.add_argument("--slice", type=int, default=None, metavar="Z",
                   help="slice of a 3-D NIfTI volume")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    return parser


def _size(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {text!r}")
    return value


def _center(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers); got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite X,Y; got {text!r}")
    return x, y


_STAR_OPTIONS = ("n_lines", "n_points", "radius", "delta", "smoothing", "interpolation")
_TRAIN_OPTIONS = ("data", "data_dir", "train_size", "seed", "split_seed", "iterations",
                  "batch_size", "lr", "val_every", "checkpoint_every", "unet_channels",
                  "unet_depth", "unet_norm", "jitter", "rotation", "sigma", "samples", "fit_steps",
                  "surrogate_lr", "surrogate_channels", "synthetic_slices")


def _train(args: argparse.Namespace) -> int:
    from lvseg.checkpoint import read_config
    from lvseg.figures import training_curves
    from lvseg.pipeline import StarConfig
    from lvseg.train import ProgressBar, TrainConfig, Trainer

    given = {k: getattr(args, k) for k in _TRAIN_OPTIONS if getattr(args, k) is not None}
    if given.get("train_size") == "all":
        given["train_size"] = None
    star_given = {k: getattr(args, k) for k in _STAR_OPTIONS if getattr(args, k) is not None}
    if args.resume:
        # the stored config, with what was given on the command line (checked by the Trainer)
        stored = TrainConfig.from_dict(read_config(args.out)).to_dict()
        stored.update(given, method=args.method)
        stored["star"] = {**stored["star"], **star_given}
        config = TrainConfig.from_dict(stored)
    else:
        config = TrainConfig(method=args.method, star=StarConfig(**star_given), **given)
    trainer = Trainer(config, args.out, resume=args.resume)
    print(f"lvseg train: {config.method} on {config.data} ({trainer.data.report}); "
          f"{len(trainer.data.train)} training slices (patients "
          f"{', '.join(trainer.data.patients['train'])}), {len(trainer.data.val)} validation; "
          f"run directory {args.out}", file=sys.stderr)
    if not args.no_progress:
        trainer.add_hook(ProgressBar())
    summary = trainer.fit()
    figures = Path(args.out) / "figures"
    figures.mkdir(exist_ok=True)
    training_curves(Path(args.out) / "metrics.jsonl", figures / "training.png")
    print(json.dumps({k: summary[k] for k in ("iteration", "best_dice", "best_iteration",
                                              "seconds")}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from lvseg.evaluate import evaluate_run

    result = evaluate_run(
        args.run_dir, data=args.data, data_dir=args.data_dir, split=args.split,
        center_jitter=args.center_jitter, seed=args.seed, figures_dir=args.figures,
        max_figures=args.max_figures, method="unet-dp" if args.dp else None,
    )  # fmt: skip
    print(f"{result['method']} ({result['checkpoint']}, iteration {result['iteration']}) on "
          f"{result['data']}/{result['split']}, n={result['n']}: Dice {result['dice']:.4f} "
          f"± {result['dice_std']:.4f}, HD {result['hd_mm']:.2f} mm, HD95 "
          f"{result['hd95_mm']:.2f} mm, ASSD {result['assd_mm']:.2f} mm"
          + (f" ({result['n_undefined']} empty predictions)" if result["n_undefined"] else ""))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from lvseg.evaluate import load_run, predict_image, read_image
    from lvseg.figures import prediction_figure

    run = load_run(args.run_dir)
    inputs = [(Path(path), *read_image(path, slice_index=args.slice)) for path in args.images]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path, image, spacing in inputs:
        if spacing is None and args.spacing is not None:
            spacing = (args.spacing, args.spacing)
        result = predict_image(run, image, args.center, spacing)
        stem = path.name.split(".")[0]
        mask = result["mask"]
        np.save(out / f"{stem}_mask.npy", mask)
        import matplotlib.pyplot as plt

        plt.imsave(out / f"{stem}_mask.png", mask.astype(np.uint8) * 255, cmap="gray",
                   vmin=0, vmax=255)
        prediction_figure(out / f"{stem}_overlay.png", image, mask, result["center"],
                          result["contour"], title=f"{run.config.method}: {path.name}")
        print(f"{path}: {int(mask.sum())} LV pixels -> {out / (stem + '_mask.png')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lvseg``; returns the exit status (2 on a user error)."""
    # Spinning OpenMP threads waiting for a busy core made training steps 10-30x slower on a
    # shared 2-core machine in our measurements; passive waiting costs little on an idle one.
    # (Read when torch starts its thread pool, so it must be set before the first import.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from lvseg.checkpoint import CheckpointError, RunDirError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return handlers[args.command](args)
    except (RunDirError, CheckpointError, FileNotFoundError, ValueError) as error:
        print(f"lvseg: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
