"""Run directories and checkpoints: atomic writes, clear errors, never overwrite by accident.

A run directory holds::

    config.json      the training configuration (written at the start of every train/resume)
    lvseg.lock       held (fcntl.flock) by the one training process working on the run
    metrics.jsonl    one JSON object per line: training steps and validations
    last.pt          the latest checkpoint (everything needed to resume exactly)
    best.pt          the checkpoint with the best validation Dice (what ``evaluate`` uses)
    figures/         overlays written by ``lvseg evaluate --figures``

Every file is written to a temporary file in the same directory, flushed and fsynced, and then
moved over the old one with :func:`os.replace` (atomic on POSIX and Windows): a crash in the
middle of a write leaves the previous version intact.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "RUN_FILES",
    "CheckpointError",
    "RunDirError",
    "RunLock",
    "atomic_write_bytes",
    "atomic_write_with",
    "check_training_state",
    "refuse_links",
    "load_checkpoint",
    "load_model_state",
    "read_config",
    "save_checkpoint",
    "write_config",
]

#: Written into every checkpoint; a file without it is not an lvseg checkpoint.
CHECKPOINT_FORMAT = "lvseg-checkpoint-v1"
CONFIG_NAME = "config.json"
LOCK_NAME = "lvseg.lock"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupt or not an lvseg checkpoint."""


class RunDirError(RuntimeError):
    """A run directory is missing, incomplete or would be overwritten."""


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + ``os.replace``).

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "x.bin"
        >>> atomic_write_bytes(p, b"abc"); p.read_bytes()
        b'abc'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _reason(error: OSError) -> str:
    """A short reason for a failed write ("the disk is full", the system's text)."""
    return "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Write ``path`` atomically with ``write(temporary_path)`` (e.g. ``np.save``, ``savefig``).

    The temporary file has ``path``'s suffix (so writers that pick the format from it work) and
    lies in the same folder; it replaces ``path`` only once complete, so a full disk never leaves
    a truncated file, and a symbolic link at ``path`` is replaced, never written through.

    Raises:
        OSError: ``cannot write PATH: REASON; ...`` (one line); nothing is left at ``path``
            that was not there before.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes[-1:]),
                               dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            raise OSError(f"cannot write {path}: {_reason(error)}; no partial file was left "
                          "there") from None
        raise


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
        raise CheckpointError(f"cannot write the checkpoint {path}: {_reason(error)}; {kept}"
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
    own = model.state_dict()
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


class RunLock:
    """An exclusive lock on a run directory (``lvseg.lock``, :func:`fcntl.flock`).

    Held by the training process from start to end, so a second ``lvseg train --resume`` on the
    same run is refused instead of interleaving its checkpoints with the first one's. The lock
    goes with the process: a killed process never leaves a stale lock.

    Raises:
        RunDirError: from :meth:`acquire` if another process holds the lock.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._handle: Any = None

    def acquire(self) -> RunLock:
        """Take the lock (without waiting)."""
        import fcntl

        try:  # O_NOFOLLOW: a planted link (even a dangling one) is refused, never written through
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            if self.path.is_symlink():
                raise RunDirError(_LINK_MESSAGE.format(path=self.path)) from None
            raise
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirError(
                f"{self.path.parent} is in use by another lvseg train process (pid {owner}); "
                "wait for it to finish or stop it before resuming this run"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Let go of the lock (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


_LINK_MESSAGE = ("{path} is a symbolic link; lvseg never writes through a link in a run directory "
                 "(it could overwrite the file it points to): remove it, or copy the file it "
                 "points to in its place")

#: The files and folders lvseg writes in a run directory (:func:`refuse_links` checks them).
RUN_FILES = (CONFIG_NAME, LOCK_NAME, "metrics.jsonl", "last.pt", "best.pt", "figures")


def refuse_links(run_dir: str | os.PathLike[str]) -> None:
    """Refuse a run directory where a file lvseg writes (:data:`RUN_FILES`) is a symbolic link.

    A downloaded run directory may hold links to files outside it; appending to ``metrics.jsonl``
    or writing ``lvseg.lock`` would then change those files.

    Raises:
        RunDirError: naming the link.
    """
    for name in RUN_FILES:
        if (Path(run_dir) / name).is_symlink():
            raise RunDirError(_LINK_MESSAGE.format(path=Path(run_dir) / name))


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


def write_config(run_dir: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Write ``config.json`` into ``run_dir`` atomically."""
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(Path(run_dir) / CONFIG_NAME, text.encode())


def read_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a run directory's ``config.json``.

    Raises:
        RunDirError: if the directory or its config is missing or not valid JSON.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {run_dir} does not exist")
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise RunDirError(
            f"{run_dir} is not an lvseg run directory: {CONFIG_NAME} is missing "
            "(create runs with `lvseg train --out DIR`)"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunDirError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(config, dict) or "method" not in config:
        raise RunDirError(f"{path} is not an lvseg run config (no 'method' key)")
    return config
