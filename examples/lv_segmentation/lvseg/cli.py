"""The ``lvseg`` command: ``train``, ``evaluate`` and ``predict`` (``lvseg <command> --help``).

The ``train`` options are generated from the fields of :class:`~lvseg.config.TrainConfig` and
:class:`~lvseg.pipeline.StarConfig` (:func:`lvseg.options.add_arguments`), so each is written
once. Errors the user can fix (a missing data folder, an existing or busy run directory, a broken
checkpoint, a full disk, a star centre outside the image, a diverged run, ...) are printed as
one ``lvseg: error: ...`` line with exit status 2; nothing is overwritten. Ctrl-C during training
saves the run and prints the command that resumes it (exit status 130); a second Ctrl-C, or one
during start-up, stops at once with one line (exit status 130).
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

_CENTER_HELP = (
    "LV centre in pixels of the image, from 0: x = column, y = row (NIfTI: voxel j,i). Click the "
    "middle of the bright blood pool in a viewer, or take the centroid of a rough mask; a centre "
    "off by a fraction of the LV radius still works. Check it on <name>_overlay.png"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lvseg`` (every option is documented in ``--help``)."""
    from lvseg.config import TrainConfig
    from lvseg.data import DATASETS
    from lvseg.device import DEVICES
    from lvseg.options import add_arguments
    from lvseg.pipeline import StarConfig

    defaults = TrainConfig(method="edpcnn")
    parser = argparse.ArgumentParser(
        prog="lvseg",
        description="Left-ventricle segmentation of short-axis cardiac MRI with EDPCNN: a U-Net "
        "trained end to end through a star-pattern dynamic program (diffbypass example).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train", help="train a method into a run directory",
        description="Train one method. Writes RUN_DIR/config.json, metrics.jsonl, last.pt (every "
        "--checkpoint-every iterations, atomically), best.pt (best validation Dice) and "
        "figures/training.png. Defaults: the best we reached for --train-size 10 on 2 CPU cores "
        "in a few minutes (thesis values in brackets).",
    )  # fmt: skip
    add_arguments(t, TrainConfig, defaults=defaults)
    add_arguments(t.add_argument_group("star pattern and DP"), StarConfig,
                  defaults=defaults.star)
    t.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR exactly from its last.pt (only --iterations may change)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _device(t, DEVICES)
    t.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory; must not exist (or be empty) unless --resume")

    e = sub.add_parser(
        "evaluate", help="Dice, HD, HD95 and ASSD of a run's best checkpoint",
        description="Evaluate RUN_DIR/best.pt inside the square that tightly holds the star "
        "(thesis protocol), star centred at the LV centre of mass (optionally jittered).",
    )  # fmt: skip
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    e.add_argument("--data", default=None, choices=list(DATASETS),
                   help="dataset (default: the run's)")
    e.add_argument("--data-dir", default=None, metavar="DIR",
                   help="dataset folder (default: the run's)")
    e.add_argument("--split", default="test", choices=["val", "test", "all"],
                   help="patients to evaluate; 'all' = every usable slice, without a patient "
                   "split (any folder, even of one patient) (default test)")
    e.add_argument("--center-jitter", type=float, default=0.0, metavar="R",
                   help="jitter the star centre: s.d. R x object radius, kept inside the object "
                   "(default 0)")
    e.add_argument("--seed", type=int, default=0, help="seed of the centre jitter (default 0)")
    _delta(e)
    e.add_argument("--dp", action="store_true",
                   help="evaluate a unet run as U-Net+DP: the star DP on its probability map "
                   "(the same weights; what a unet-dp run does)")
    e.add_argument("--json", default=None, metavar="FILE",
                   help="write the results (means, std, per image) as JSON")
    e.add_argument("--figures", default=None, metavar="DIR",
                   help="write pipeline overlays (thesis fig. 4.3) as PNGs into DIR")
    e.add_argument("--max-figures", type=int, default=12, metavar="N",
                   help="at most this many PNGs (default 12)")
    _device(e, DEVICES)

    p = sub.add_parser(
        "predict", help="segment new slices given the LV centre",
        description="Segment DICOM, NIfTI (.nii/.nii.gz) or .npy slices with RUN_DIR/best.pt. "
        "Writes <name>_mask.png, <name>_mask.npy and <name>_overlay.png per image into DIR "
        "(<name>: the file's stem, prefixed with its folder where stems repeat). Every input is "
        "checked before anything is written.",
    )  # fmt: skip
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="DICOM, NIfTI (.nii, .nii.gz) or .npy slices")
    p.add_argument("--center", required=True, type=_center, metavar="X,Y", help=_CENTER_HELP)
    p.add_argument("--spacing", type=float, default=None, metavar="MM",
                   help="pixel size in mm for .npy images (default: the training spacing "
                   f"{_training_spacing()})")
    p.add_argument("--slice", type=int, default=None, metavar="Z",
                   help="slice of a 3-D NIfTI volume")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _delta(p)
    _device(p, DEVICES)
    return parser


def _delta(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--delta", type=int, default=None, metavar="D",
        help="the DP's smoothness for prediction: the largest index change between neighbouring "
        "star lines (default: the run's, 1 by default). With a centre away from the centre of "
        "mass, 2 lets the contour follow the LV: on ACDC a jitter of 0.2 x the radius cost "
        "0.007-0.008 Dice with 2 against 0.026-0.040 with 1, and the exact centre 0.001-0.007 "
        "(benchmarks/README.md, acdc_ablation)")


def _device(parser: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    parser.add_argument("--device", default="auto", choices=list(choices),
                        help="where the U-Net (and the surrogate) run: auto = CUDA when present, "
                        "else the CPU; the star DP always runs on the CPU (default auto)")


def _training_spacing() -> float:
    """The training pixel size (mm), for the help text."""
    from lvseg.data import SPACING_MM

    return SPACING_MM


def _center(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers); got {text!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f"expected finite X,Y; got {text!r}")
    return x, y


def _given(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (absent ones are not in ``args``)."""
    import dataclasses

    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def _train(args: argparse.Namespace) -> int:
    from lvseg.checkpoint import atomic_write_with, read_config
    from lvseg.config import TrainConfig
    from lvseg.figures import training_curves
    from lvseg.hooks import ProgressBar
    from lvseg.pipeline import StarConfig
    from lvseg.interrupt import TrainingInterrupted
    from lvseg.train import Trainer

    given = _given(args, TrainConfig)
    star_given = _given(args, StarConfig)
    if args.resume:
        # the stored config, with what was given on the command line (checked by the Trainer)
        stored = TrainConfig.from_dict(read_config(args.out),
                                       source=str(Path(args.out) / "config.json")).to_dict()
        stored.update(given)
        stored["star"] = {**stored["star"], **star_given}
        config = TrainConfig.from_dict(stored)
    else:
        config = TrainConfig(star=StarConfig(**star_given), **given)
    trainer = Trainer(config, args.out, resume=args.resume, device=args.device)
    main = trainer.ranks.main  # under torchrun rank 0 reports (lvseg.distributed)
    print(f"lvseg train: {config.method} on {config.data} ({trainer.data.report}); "
          f"{len(trainer.data.train)} training slices (patients "
          f"{', '.join(trainer.data.patients['train'])}), {len(trainer.data.val)} validation; "
          f"run directory {args.out}; device {trainer.device}"
          + (f"; process {trainer.ranks.rank} of {trainer.ranks.size}" if trainer.ranks.size > 1 else ""),
          file=sys.stderr)
    if not args.no_progress and main:
        trainer.add_hook(ProgressBar())
    try:
        summary = trainer.fit()
    except TrainingInterrupted as stop:
        if not main:
            return 130
        print(f"lvseg: interrupted; {args.out}/last.pt saved at iteration {stop.iteration}; "
              f"resume with: lvseg train --method {config.method} --out {args.out} --resume",
              file=sys.stderr)
        return 130
    if not main:
        return 0
    figures = Path(args.out) / "figures"
    figures.mkdir(exist_ok=True)
    atomic_write_with(figures / "training.png",  # replaces a planted link, never follows it
                      lambda tmp: training_curves(Path(args.out) / "metrics.jsonl", tmp))
    print(json.dumps({k: summary[k] for k in ("iteration", "best_dice", "best_iteration",
                                              "seconds")}))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from lvseg.checkpoint import atomic_write_bytes
    from lvseg.evaluate import evaluate_run

    if args.json:  # before the evaluation, not after it
        _check_writable(args.json, "--json")

    result = evaluate_run(
        args.run_dir, data=args.data, data_dir=args.data_dir, split=args.split,
        center_jitter=args.center_jitter, seed=args.seed, figures_dir=args.figures,
        max_figures=args.max_figures, method="unet-dp" if args.dp else None,
        device=args.device, delta=args.delta,
    )  # fmt: skip
    where = f" ({result['data_dir']})" if result["data_dir"] else ""
    print(f"{result['method']} ({result['checkpoint']}, iteration {result['iteration']}) on "
          f"{result['data']}{where}/{result['split']}, n={result['n']}: Dice "
          f"{result['dice']:.4f} ± {result['dice_std']:.4f}, HD {result['hd_mm']:.2f} mm, HD95 "
          f"{result['hd95_mm']:.2f} mm, ASSD {result['assd_mm']:.2f} mm"
          + (f" ({result['n_undefined']} empty predictions)" if result["n_undefined"] else ""))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


def _check_writable(path: str, option: str) -> None:
    """Refuse an output file that is a folder, or whose nearest existing parent is not one."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path} is a folder; give the name of a file to write, e.g. "
                         f"{target / 'results.json'}")
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {path} cannot be written: {parent} is not a writable folder")


def _predict(args: argparse.Namespace) -> int:
    from lvseg.evaluate import load_run
    from lvseg.predict import predict_files

    run = load_run(args.run_dir, device=args.device, delta=args.delta)
    for image, (png, result) in zip(args.images, predict_files(
            run, args.images, args.center, args.out, spacing=args.spacing,
            slice_index=args.slice)):
        print(f"{image}: {int(result['mask'].sum())} LV pixels -> {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lvseg``; returns the exit status (2 on a user error)."""
    # Spinning OpenMP threads waiting for a busy core made training steps 10-30x slower on a
    # shared 2-core machine in our measurements; passive waiting costs little on an idle one.
    # (Read when torch starts its thread pool, so it must be set before the first import.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # a second Ctrl-C in training, or one while starting up
        print("lvseg: interrupted at once (every file lvseg writes is written atomically, so "
              "none is half-written; a run resumes from its last.pt)", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    from lvseg.checkpoint import CheckpointError, RunDirError

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": _train, "evaluate": _evaluate, "predict": _predict}
    try:
        return handlers[args.command](args)
    except (RunDirError, CheckpointError, OSError, ValueError, FloatingPointError) as error:
        print(f"lvseg: error: {error}", file=sys.stderr)  # FloatingPointError: a diverged run
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
