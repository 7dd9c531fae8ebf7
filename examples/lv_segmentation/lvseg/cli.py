"""The ``lvseg`` command: ``train``, ``evaluate`` and ``predict`` (``lvseg <command> --help``).

Every option is generated from the fields of a dataclass config (:func:`lvseg.options.add_arguments`),
so each is written once: ``train``'s from :class:`~lvseg.config.TrainConfig` and
:class:`~lvseg.star.StarConfig`, ``evaluate``'s from
:class:`~lvseg.inference_options.EvaluateConfig`, ``predict``'s from
:class:`~lvseg.inference_options.PredictConfig`, and the ones they share (``--delta``,
``--n-lines``, ``--device``) from :class:`~lvseg.inference_options.RunOptions`; none of them
imports torch, so ``--help`` and usage errors are answered at once. One option name has one
meaning: the seed of ``evaluate``'s centre jitter is ``--jitter-seed`` (``--seed`` there says so). Errors the user can fix (a missing data folder, an existing or busy run directory, a broken
checkpoint, a full disk, a star centre outside the image, a diverged run, ...) are printed as
one ``lvseg: error: ...`` line with exit status 2; nothing is overwritten. Ctrl-C during training
saves the run and prints the command that resumes it (exit status 130); a second Ctrl-C, or one
during start-up, stops at once with one line (exit status 130).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from lvseg.options import given_options

__all__ = ["COMMANDS", "build_parser", "main"]

#: The commands of ``lvseg``.
COMMANDS = ("train", "evaluate", "predict")


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """The argument parser of ``lvseg`` (every option is documented in ``--help``).

    Args:
        commands: the commands whose options are added (the others are listed, with no
            options): :func:`main` adds only the command it runs, so ``lvseg --help`` and
            ``lvseg <command> --help`` import only what their options are generated from.

    Raises:
        ValueError: if ``commands`` names a command that is not one of :data:`COMMANDS`.
    """
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        raise ValueError(f"commands must be among {', '.join(COMMANDS)}; got {unknown}")
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
    e = sub.add_parser(
        "evaluate", help="Dice, HD, HD95 and ASSD of a run's best checkpoint",
        description="Evaluate RUN_DIR/best.pt inside the square that tightly holds the star "
        "(thesis protocol), star centred at the LV centre of mass (optionally jittered); or, "
        "with --protocol volumes, by the ACDC challenge's protocol with the LV found without "
        "ground truth (--json FILE also writes FILE's stem + _bland_altman.png).",
    )  # fmt: skip
    p = sub.add_parser(
        "predict", help="segment whole volumes (the LV found), or slices given the LV centre",
        description="Without --center: segment every slice of every frame of 3-D/4-D NIfTI "
        "volumes, DICOM series folders or ACDC patient folders with RUN_DIR/best.pt, the LV "
        "found in each slice; writes <name>_lv.nii.gz (the input's affine), a montage PNG and "
        "<name>_volumes.json/.csv (mL per frame; EDV, ESV and EF when ED and ES are known). "
        "With --center: segment DICOM, NIfTI or .npy 2-D slices with the star there; writes "
        "<name>_mask.png, <name>_mask.npy and <name>_overlay.png (<name>: the file's stem, "
        "prefixed with its folder where stems repeat). Every input is checked before anything "
        "is written.",
    )  # fmt: skip
    for command, subparser, add in (("train", t, _train_options),
                                    ("evaluate", e, _evaluate_options),
                                    ("predict", p, _predict_options)):
        if command in commands:
            add(subparser)
    return parser


def _train_options(t: argparse.ArgumentParser) -> None:
    from lvseg.config import TrainConfig
    from lvseg.inference_options import RunOptions, StarOverrides
    from lvseg.options import add_arguments
    from lvseg.star import StarConfig

    add_arguments(t, TrainConfig)
    add_arguments(t.add_argument_group("star pattern and DP"), StarConfig)
    t.add_argument("--resume", action="store_true",
                   help="continue RUN_DIR exactly from its last.pt (only --iterations may change)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    # the star's own settings are StarConfig's above, not overrides: only --device
    add_arguments(t, RunOptions, skip=tuple(f.name for f in dataclasses.fields(StarOverrides)))
    t.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory; must not exist (or be empty) unless --resume")


def _evaluate_options(e: argparse.ArgumentParser) -> None:
    from lvseg.inference_options import EvaluateConfig
    from lvseg.options import add_arguments

    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    add_arguments(e, EvaluateConfig)
    e.add_argument("--seed", action=_Renamed, help=argparse.SUPPRESS,
                   new="--jitter-seed", why="train's --seed seeds the training")


def _predict_options(p: argparse.ArgumentParser) -> None:
    from lvseg.inference_options import PredictConfig
    from lvseg.options import add_arguments

    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by lvseg train")
    p.add_argument("images", nargs="+", metavar="FILE",
                   help="volumes (NIfTI, DICOM series or ACDC patient folders) or, with "
                   "--center, DICOM, NIfTI (.nii, .nii.gz) or .npy slices")
    add_arguments(p, PredictConfig)


class _Renamed(argparse.Action):
    """An option that was renamed: a one-line error naming the new spelling."""

    def __init__(self, *args: Any, new: str, why: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new, self.why = new, why

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.error(f"{option_string} is now {self.new} here ({self.why}): "
                     f"use {self.new} {values}")


def _train(args: argparse.Namespace) -> int:
    from lvseg.rundir import read_config
    from lvseg.config import TrainConfig
    from lvseg.star import StarConfig
    from lvseg.inference_options import RunOptions
    from lvseg.train import Trainer

    given = given_options(args, TrainConfig)
    star_given = given_options(args, StarConfig)
    if args.resume:
        # the stored config, with what was given on the command line (checked by the Trainer)
        stored = TrainConfig.from_dict(read_config(args.out),
                                       source=str(Path(args.out) / "config.json")).to_dict()
        stored.update(given)
        stored["star"] = {**stored["star"], **star_given}
        config = TrainConfig.from_dict(stored)
    else:
        config = TrainConfig(star=StarConfig(**star_given), **given)
    device = RunOptions(**given_options(args, RunOptions)).device
    trainer = Trainer(config, args.out, resume=args.resume, device=device)
    try:
        return _fit(trainer, args, config)
    finally:  # every way out: no torchrun group left to the interpreter's exit
        trainer.close()


def _fit(trainer: Any, args: argparse.Namespace, config: Any) -> int:
    """``lvseg train``'s training and report, once the :class:`~lvseg.train.Trainer` is built."""
    from lvseg.figures import training_curves
    from lvseg.hooks import ProgressBar, RimWarning
    from lvseg.interrupt import TrainingInterrupted
    from lvseg.rundir import atomic_write_with

    main = trainer.ranks.main  # under torchrun rank 0 reports (lvseg.distributed)
    print(f"lvseg train: {config.method} on {config.data} ({trainer.data.report}); "
          f"{len(trainer.data.train)} training slices (patients "
          f"{', '.join(trainer.data.patients['train'])}), {len(trainer.data.val)} validation; "
          f"run directory {args.out}; device {trainer.device}"
          + (f"; process {trainer.ranks.rank} of {trainer.ranks.size}" if trainer.ranks.size > 1 else ""),
          file=sys.stderr)
    if not args.no_progress and main:
        trainer.add_hook(ProgressBar())
    if main:
        trainer.add_hook(RimWarning())
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


def _predict(args: argparse.Namespace) -> int:
    from lvseg.images import check_slice_inputs
    from lvseg.inference_options import PredictConfig
    from lvseg.predict import predict_files
    from lvseg.runs import load_run

    config = PredictConfig(**given_options(args, PredictConfig))
    if config.center is None:
        return _predict_volumes(args, config)
    check_slice_inputs(args.images)
    run = load_run(args.run_dir, device=config.device, overrides=config.star_overrides)
    for image, (png, result) in zip(args.images, predict_files(
            run, args.images, config.center, config.out, spacing=config.spacing,
            slice_index=config.slice)):
        print(f"{image}: {int(result['mask'].sum())} LV pixels -> {png}")
    return 0


def _predict_volumes(args: argparse.Namespace, config: Any) -> int:
    """``lvseg predict`` without ``--center``: every slice of every volume, the LV found."""
    from lvseg.centre_free import RunSegmenter
    from lvseg.runs import load_run
    from lvseg.volumes import predict_volumes

    run = load_run(args.run_dir, device=config.device, overrides=config.star_overrides)
    locator = None if config.locator is None else load_run(config.locator, device=config.device)
    segmenter = RunSegmenter(run, locator=locator, min_area_mm2=config.min_lv_area,
                             find=config.find)
    for image, record in zip(args.images, predict_volumes(args.images, segmenter, config.out)):
        volumes = ", ".join(f"{f['volume_ml']:.1f}" for f in record["frames"])
        phases = ""
        if record.get("ef") is not None:
            phases = (f"; EDV {record['edv_ml']:.1f} mL, ESV {record['esv_ml']:.1f} mL, EF "
                      f"{record['ef']:.1f} %")
        print(f"{image}: LV volume per frame (mL) {volumes}{phases}; "
              f"{_count(len(record['slices_without_lv']), 'slice')} without LV; "
              f"{_count(len(record['warnings']), 'warning')} -> {config.out}")
        for warning in record["warnings"]:
            print(f"lvseg: warning: {image}: {warning}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lvseg``; returns the exit status (2 on a user error)."""
    # Spinning OpenMP threads waiting for a busy core made training steps several times slower
    # on a shared machine (docs/lv_example.md, 'Results'); passive waiting costs little on an idle one.
    # (Read when torch starts its thread pool, so it must be set before the first import.)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # a second Ctrl-C in training, or one while starting up
        print("lvseg: interrupted at once (every file lvseg writes is written atomically, so "
              "none is half-written; a run resumes from its last.pt)", file=sys.stderr)
        return 130


def _run(argv: list[str]) -> int:
    # only the command argv names gets its options: --help, or no or a wrong command, none
    parser = build_parser([argv[0]] if argv and argv[0] in COMMANDS else [])
    args = parser.parse_args(argv)

    from lvseg.checkpoint import CheckpointError
    from lvseg.cli_evaluate import run_evaluate
    from lvseg.rundir import RunDirError

    handlers = {"train": _train, "evaluate": run_evaluate, "predict": _predict}
    try:
        return handlers[args.command](args)
    except (RunDirError, CheckpointError, OSError, ValueError, FloatingPointError) as error:
        print(f"lvseg: error: {error}", file=sys.stderr)  # FloatingPointError: a diverged run
        return 2


def _count(n: int, noun: str) -> str:
    """A count and its noun for the summary lines.

    Example:
        >>> _count(1, "warning"), _count(0, "slice"), _count(3, "slice")
        ('1 warning', '0 slices', '3 slices')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


if __name__ == "__main__":
    raise SystemExit(main())
