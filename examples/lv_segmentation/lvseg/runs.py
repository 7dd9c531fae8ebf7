"""A run directory as a whole: open it for training, load a trained run for evaluation or prediction.

:func:`open_run` checks a run directory before training starts or resumes (the ``Trainer`` calls
it); :func:`load_run` builds a run's model from its ``config.json`` and loads a checkpoint into it
(``lvseg evaluate`` and ``lvseg predict``). The files are :mod:`lvseg.rundir`'s, the checkpoints
:mod:`lvseg.checkpoint`'s.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from torch import nn

from lvseg.checkpoint import CheckpointError, check_training_state, load_checkpoint, load_model_state
from lvseg.config import TrainConfig
from lvseg.device import resolve_device
from lvseg.inference_options import StarOverrides
from lvseg.methods import build_model, star_of, unet_of
from lvseg.rundir import CONFIG_NAME, LOCK_NAME, RunDirError, read_config

__all__ = ["UNSAVED", "LoadedRun", "load_run", "open_run"]

#: What a run directory holds before its first checkpoint: such a run may be started afresh.
UNSAVED = frozenset({CONFIG_NAME, LOCK_NAME, "metrics.jsonl"})


def open_run(run_dir: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Check ``run_dir`` for training ``config``; returns the ``last.pt`` state to resume from.

    Without ``resume`` the directory must not exist, be empty, or hold only what a run writes
    before its first checkpoint (:data:`UNSAVED`); returns ``None``. With ``resume`` its
    ``config.json`` must equal ``config`` except for ``iterations`` (never below the iterations
    already done), and its ``last.pt`` must be a valid checkpoint.

    Raises:
        RunDirError, CheckpointError: naming the directory and what to do.
    """
    if not resume:
        if run_dir.exists() and (not run_dir.is_dir() or not {
                p.name for p in run_dir.iterdir()} <= UNSAVED):
            raise RunDirError(
                f"{run_dir} already exists and is not empty; pass --resume to continue "
                "that run, or choose another --out (nothing was overwritten)"
            )
        return None
    stored = TrainConfig.from_dict(read_config(run_dir),
                                   source=str(run_dir / CONFIG_NAME))
    mine, theirs = config.to_dict(), stored.to_dict()
    mine.pop("iterations"), theirs.pop("iterations")
    differ = sorted(k for k in mine if mine[k] != theirs[k])
    if differ:
        raise RunDirError(
            f"cannot resume {run_dir}: options differ from its config.json ("
            + ", ".join(f"{k}: {theirs[k]!r} there, {mine[k]!r} now" for k in differ)
            + "); only --iterations may change"
        )
    last = run_dir / "last.pt"
    if not last.is_file():
        raise RunDirError(
            f"cannot resume {run_dir}: it has no last.pt checkpoint yet (it stopped "
            "before its first checkpoint); run the same command without --resume to start it "
            "afresh"
        )
    state = load_checkpoint(last)
    done = check_training_state(state, last)
    if config.iterations < done:
        raise RunDirError(
            f"cannot resume {run_dir} with --iterations {config.iterations}: it has "
            f"already finished iteration {done}; pass --iterations {done} or more "
            "(nothing was changed)"
        )
    return state


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its config, the model (eval mode) and which checkpoint was loaded.

    ``config.star.smoothness`` is the DP's smoothness penalty inference uses: the one the
    checkpoint learned if the run learned it (``learn_smoothness``). ``overrides`` are the star
    settings :func:`load_run` replaced (already in ``config.star``): those the user gave, which
    a use's own defaults do not replace (centre-free segmentation's number of lines,
    :class:`lvseg.centre_free.RunSegmenter`)."""

    config: TrainConfig
    model: nn.Module
    checkpoint: str
    iteration: int
    overrides: StarOverrides = StarOverrides()

    @property
    def unet(self) -> nn.Module:
        """The run's U-Net (all methods predict from it)."""
        return unet_of(self.model)


def load_run(
    run_dir: str | os.PathLike[str], checkpoint: str = "best", *, device: str = "cpu",
    overrides: StarOverrides = StarOverrides(),
) -> LoadedRun:
    """Load ``run_dir/<checkpoint>.pt`` (``best``, falling back to ``last``) into its model.

    The model is put on ``device`` (:func:`~lvseg.device.resolve_device`: ``auto``, ``cpu`` or
    ``cuda``), in eval mode. ``overrides`` replaces the run's star settings for prediction
    (:class:`~lvseg.inference_options.StarOverrides`: the DP's ``delta``, the number of lines
    ``n_lines``, where the contour is drawn ``edge_offset``, the width of the moving average on
    the DP's indices ``smoothing``; ``None``: the run's; the weights depend on none of them; a
    run's ``smoothing=None`` follows ``n_lines``): see ``lvseg evaluate --help``. The returned
    ``config`` keeps the run's number of lines unless ``overrides`` gives ``n_lines``;
    centre-free segmentation raises it to :data:`~lvseg.inference_options.CENTRE_FREE_N_LINES`
    when ``overrides`` does not (:func:`lvseg.centre_free.centre_free_star`).

    Example:
        ``load_run("runs/edpcnn", overrides=StarOverrides(n_lines=50))``: a finer contour.

    Raises:
        TypeError: if ``overrides`` is not a :class:`~lvseg.inference_options.StarOverrides`.
        ValueError: if ``overrides`` does not fit the run's star (checked by
            :class:`~lvseg.star.StarConfig`), naming the options (``--n-lines 2``).
        RunDirError: if ``run_dir`` is not a run directory.
        CheckpointError: if the checkpoint is missing, corrupt, or does not fit the config.
    """
    if not isinstance(overrides, StarOverrides):
        raise TypeError("overrides must be a StarOverrides (lvseg.inference_options), e.g. "
                        f"StarOverrides(n_lines=50); got {type(overrides).__name__}")
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(read_config(run_dir), source=str(run_dir / "config.json"))
    given = overrides.given()
    if given:  # checked by StarConfig (star_points, StarDP), once
        try:
            star = dataclasses.replace(config.star, **given)
        except ValueError as error:
            options = " ".join(f"--{k.replace('_', '-')} {v!r}" for k, v in given.items())
            raise ValueError(f"{options} does not fit the star of {run_dir}: {error}") from None
        config = dataclasses.replace(config, star=star)
    path = run_dir / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists():
        path = run_dir / "last.pt"
    if not path.exists():
        raise CheckpointError(
            f"{run_dir} has no checkpoint yet ({checkpoint}.pt missing); train it first"
        )
    state = load_checkpoint(path)
    model = build_model(config)
    load_model_state(model, state, path, config.to_dict())
    model.to(resolve_device(device)).eval()
    config = dataclasses.replace(config, star=star_of(model, config.star))  # a learned penalty
    return LoadedRun(config, model, path.name, int(state.get("iteration", 0)), overrides)
