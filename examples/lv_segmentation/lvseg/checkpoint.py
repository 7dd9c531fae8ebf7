"""Checkpoints: atomic saving, safe loading (``weights_only=True``) and validation.

A checkpoint is a dict of tensors and plain Python values tagged with :data:`CHECKPOINT_FORMAT`,
written atomically (:func:`lvseg.rundir.atomic_write_bytes`). Loading refuses anything else
before it can run code, and the weights and training state are checked before they are used
(:func:`load_model_state`, :func:`check_training_state`). The run directory around the
checkpoints is :mod:`lvseg.rundir`; a trained run is loaded with :func:`lvseg.runs.load_run`.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lvseg.rundir import atomic_write_bytes, write_failure

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "check_training_state",
    "load_checkpoint",
    "load_model_state",
    "save_checkpoint",
]

#: Written into every checkpoint; a file without it is not an lvseg checkpoint.
CHECKPOINT_FORMAT = "lvseg-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not an lvseg checkpoint."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Serialise ``state`` (tensors, state dicts, plain Python) to ``path`` atomically.

    Raises:
        CheckpointError: if the file cannot be written (disk full, no permission, ...); the
            previous version of ``path``, if any, is left intact.
    """
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    path = Path(path)
    existed = path.is_file()
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        kept = (f"the previous {path.name} is intact" if existed else
                f"no {path.name} was written (there was none before)")
        raise CheckpointError(f"cannot write the checkpoint {path}: {write_failure(error)}; {kept}"
                              ) from None


def load_model_state(model: nn.Module, state: dict[str, Any], path: str | os.PathLike[str],
                     config: dict[str, Any] | None = None) -> None:
    """Load ``state["model"]`` into ``model``; a mismatch is one paragraph, not a key dump.

    Args:
        model: the model built from the run's ``config.json``.
        state: the loaded checkpoint.
        path: the checkpoint file (for the message).
        config: the run's config as a dict; options that differ from the config stored in the
            checkpoint are named in the message.

    Raises:
        CheckpointError: if the tensors do not fit the model.
    """
    weights = state.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path} holds no model weights")
    # the tensors only: state_dict() would also build each surrogate's optimiser (its extra
    # state), which prediction never needs and which imports torch._dynamo
    own: dict[str, Any] = {**dict(model.named_parameters(remove_duplicate=False)),
                           **dict(model.named_buffers(remove_duplicate=False))}
    for key, tensor in own.items():  # what load_state_dict would cast or copy silently
        value = weights.get(key)
        if not (isinstance(tensor, torch.Tensor) and isinstance(value, torch.Tensor)
                and value.shape == tensor.shape):
            continue  # a missing or reshaped tensor: the paragraph below
        if value.dtype != tensor.dtype:
            raise CheckpointError(
                f"{path} is refused: its tensor {key} has dtype {value.dtype}, the model's "
                f"{tensor.dtype} (a crafted or foreign checkpoint); use a checkpoint lvseg wrote"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(
                f"{path} is refused: its tensor {key} holds {bad} NaN/inf value(s) (saved from a "
                "diverged run, or damaged); use another checkpoint or train again"
            )
    try:
        model.load_state_dict(weights)
        return
    except (RuntimeError, ValueError, TypeError, AttributeError, KeyError):
        pass  # e.g. an ES run's weights in a surrogate's model: _extra_state of another kind
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shapes = sorted(k for k in set(own) & set(weights)
                    if getattr(weights[k], "shape", None) != getattr(own[k], "shape", None))
    parts = [f"{len(x)} {what} (e.g. {x[0]})" for x, what in (
        (missing, "tensors missing"), (extra, "unexpected tensors"),
        (shapes, "tensors of another shape")) if x]  # fmt: skip
    stored = state.get("config")
    differ = []
    if isinstance(config, dict) and isinstance(stored, dict):
        differ = [f"{k}: {stored.get(k)!r} in the checkpoint, {config.get(k)!r} in config.json"
                  for k in sorted(set(config) | set(stored))
                  if k != "iterations" and stored.get(k) != config.get(k)]
    why = ("It was written with other options (" + "; ".join(differ) + ")" if differ else
           "It was probably written with other options (method, U-Net or star settings)")
    raise CheckpointError(
        f"{path} does not fit the run's config.json: the model built from the config and the "
        f"checkpoint's weights differ ({', '.join(parts) or 'in their values'}). {why}. Put the "
        "config.json that was saved with this checkpoint back, or train a new run."
    )


def check_training_state(state: dict[str, Any], path: str | os.PathLike[str]) -> int:
    """Check the fields of a ``last.pt`` that resuming uses as numbers; returns its iteration.

    The model's tensors are checked by :func:`load_model_state` and the sampler's by
    :meth:`~lvseg.sampler.BatchSampler.load_state_dict`.

    Raises:
        CheckpointError: naming the file and the first field that is wrong (a damaged or
            crafted checkpoint: a negative iteration would silently train extra iterations).
    """
    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    done, best, best_at = (state.get(k) for k in ("iteration", "best_dice", "best_iteration"))
    problem = None
    if not integer(done) or done < 1:
        problem = f"iteration must be an integer >= 1; got {done!r}"
    elif not (isinstance(best, float) and (math.isfinite(best) or best == -math.inf)):
        problem = f"best_dice must be a finite number or -inf; got {best!r}"
    elif not integer(best_at) or not 0 <= best_at <= done:
        problem = f"best_iteration must be an integer in [0, {done}]; got {best_at!r}"
    elif any(t.is_floating_point() and not bool(torch.isfinite(t).all())
             for t in _tensors(state.get("optimizer"))):
        problem = "the optimizer state holds NaN/inf values"
    if problem:
        raise CheckpointError(f"{path} is refused: its {problem} (a damaged or crafted "
                              "checkpoint); resume from another copy or train again")
    return done


def _tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor inside nested dicts, lists and tuples."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    The file is read with ``torch.load(weights_only=True)``: a checkpoint holds only tensors and
    plain Python values, and a file that asks the unpickler for anything else (a crafted pickle
    that would run code) is refused with :class:`CheckpointError` before it can run.

    Raises:
        CheckpointError: naming the file and what is wrong with it (missing, unreadable, not an
            lvseg checkpoint, or holding objects other than tensors and plain Python).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # weights_only=True: never run code from a file a user may have downloaded; the
        # checkpoint holds only tensors and plain Python (the NumPy RNG state is a dict of ints)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused it: never relay torch's advice
        raise CheckpointError(_refusal(path, str(error))) from None
    except Exception as error:  # truncated zip, ...
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {first}); it may be "
            "truncated or corrupt — delete it, or resume from another run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an lvseg checkpoint (expected format {CHECKPOINT_FORMAT!r})"
        )
    return state


def _refusal(path: Path, text: str) -> str:
    """One line for a file ``torch.load(weights_only=True)`` refused (no advice to disable it)."""
    tail = ("It is not safe to load (not even with weights_only=False); delete it, or use a "
            "checkpoint you trained yourself")
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return (f"refused checkpoint {path}: it is unreadable as tensors and plain values: it "
                f"asks the unpickler for the Python object {found.group(1)}, and unpickling "
                f"such objects can run any code. {tail}")
    detail = re.search(r"(Unsupported [^\n]*)", text)
    why = f" ({detail.group(1).strip()})" if detail else ""
    return (f"checkpoint {path} is unreadable: its content is not a torch checkpoint{why}; it "
            f"may be truncated or corrupt. {tail}")
