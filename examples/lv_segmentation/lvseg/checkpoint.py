"""Run directories and checkpoints: atomic writes, clear errors, never overwrite by accident.

A run directory holds::

    config.json      the training configuration (written once, at the start)
    metrics.jsonl    one JSON object per line: training steps and validations
    last.pt          the latest checkpoint (everything needed to resume exactly)
    best.pt          the checkpoint with the best validation Dice (what ``evaluate`` uses)
    figures/         overlays written by ``lvseg evaluate --figures``

Every file is written to a temporary file in the same directory, flushed and fsynced, and then
moved over the old one with :func:`os.replace` (atomic on POSIX and Windows): a crash in the
middle of a write leaves the previous version intact.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "RunDirError",
    "atomic_write_bytes",
    "load_checkpoint",
    "read_config",
    "save_checkpoint",
    "write_config",
]

#: Written into every checkpoint; a file without it is not an lvseg checkpoint.
CHECKPOINT_FORMAT = "lvseg-checkpoint-v1"
CONFIG_NAME = "config.json"


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


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Serialise ``state`` (tensors, state dicts, plain Python) to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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
    except Exception as error:  # truncated zip, pickle garbage, ...
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); it may be "
            "truncated or corrupt — delete it, or resume from another run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not an lvseg checkpoint (expected format {CHECKPOINT_FORMAT!r})"
        )
    return state


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
