"""Run directories: their files, their lock, and safe file writes.

A run directory holds::

    config.json      the training configuration (written at the start of every train/resume)
    lvseg.lock       held (fcntl.flock) by the one training process working on the run
    metrics.jsonl    one JSON object per line: training steps and validations
    last.pt          the latest checkpoint (everything needed to resume exactly)
    best.pt          the checkpoint with the best validation Dice (what ``evaluate`` uses)
    figures/         overlays written by ``lvseg evaluate --figures``

Every file is written to a temporary file in the same directory, flushed and fsynced, and then
moved over the old one with :func:`os.replace` (atomic on POSIX and Windows): a crash in the
middle of a write leaves the previous version intact. Checkpoints themselves are
:mod:`lvseg.checkpoint`; loading a trained run is :mod:`lvseg.runs`.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "RUN_FILES",
    "RunDirError",
    "RunLock",
    "atomic_write_bytes",
    "atomic_write_with",
    "read_config",
    "refuse_links",
    "write_config",
    "write_failure",
]

#: The run's configuration file.
CONFIG_NAME = "config.json"
#: The lock file of the training process.
LOCK_NAME = "lvseg.lock"


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
    _replace_when_written(Path(path), ".tmp", lambda tmp: tmp.write_bytes(data))


def write_failure(error: OSError) -> str:
    """A short reason for a failed write ("the disk is full", the system's text)."""
    return "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Write ``path`` atomically with ``write(temporary_path)`` (e.g. ``np.save``, ``savefig``).

    The temporary file has ``path``'s suffix (both parts of a compressed one such as ``.nii.gz``,
    so writers that pick the format from it work) and lies in the same folder; it replaces
    ``path`` only once complete, so a full disk never leaves a truncated file, and a symbolic link
    at ``path`` is replaced, never written through.

    Raises:
        OSError: ``cannot write PATH: REASON; ...`` (one line); nothing is left at ``path``
            that was not there before.
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    try:
        _replace_when_written(path, suffix, write)
    except OSError as error:
        raise OSError(f"cannot write {path}: {write_failure(error)}; no partial file was left "
                      "there") from None


def _replace_when_written(path: Path, suffix: str, write: Callable[[Path], None]) -> None:
    """``write`` a new temporary file next to ``path``, fsync it, then move it over ``path``.

    The temporary file is created (``mkstemp``: never an existing file or link) and removed on
    any failure; :func:`os.replace` replaces a link at ``path`` instead of following it.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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
