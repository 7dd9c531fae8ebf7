"""Opening a checkpoint never runs code from it (``torch.load(weights_only=True)`` everywhere).

A crafted ``best.pt``/``last.pt`` whose pickle would write a marker file is refused on every
path that opens a checkpoint — ``lvseg evaluate``, ``lvseg predict`` and ``lvseg train --resume``
— with a :class:`CheckpointError` naming the file, and the marker never appears.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lvseg.checkpoint import CheckpointError, load_checkpoint
from lvseg.cli import main
from lvseg_testing import TINY_ARGS

pytestmark = pytest.mark.usefixtures("one_thread")


class _WritesMarker:
    """Unpickling this object calls ``os.system`` (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def _hostile_checkpoint(path: Path, marker: Path) -> None:
    # a real torch.save zip whose data.pkl calls os.system when unpickled without weights_only
    torch.save({"format": "lvseg-checkpoint-v1", "payload": _WritesMarker(marker)}, path)


@pytest.fixture()
def hostile_run(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    marker = tmp_path / "pwned"
    for name in ("best.pt", "last.pt"):
        _hostile_checkpoint(copy / name, marker)
    return copy, marker


def test_the_hostile_pickle_really_runs_code_without_weights_only(tmp_path: Path) -> None:
    # guards the other tests: the payload is live (plain unpickling runs it), so "marker
    # absent" below means "refused", not "the payload was inert"
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_WritesMarker(marker)))
    assert marker.exists()


def test_load_checkpoint_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    _hostile_checkpoint(tmp_path / "best.pt", marker)
    with pytest.raises(CheckpointError, match=r"best\.pt.*unreadable"):
        load_checkpoint(tmp_path / "best.pt")
    assert not marker.exists()


def test_evaluate_refuses_a_hostile_checkpoint(hostile_run: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, marker = hostile_run
    assert main(["evaluate", str(run), "--split", "test"]) == 2
    assert "best.pt" in capsys.readouterr().err
    assert not marker.exists()


def test_predict_refuses_a_hostile_checkpoint(hostile_run: tuple[Path, Path],
                                              tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run, marker = hostile_run
    image = tmp_path / "image.npy"
    np.save(image, np.random.default_rng(0).random((64, 64)).astype(np.float32))
    assert main(["predict", str(run), str(image), "--center", "32,32", "--spacing", "1.0",
                 "--out", str(tmp_path / "pred")]) == 2
    assert "best.pt" in capsys.readouterr().err
    assert not marker.exists()


def test_resume_refuses_a_hostile_checkpoint(hostile_run: tuple[Path, Path], capsys) -> None:  # type: ignore[no-untyped-def]
    run, marker = hostile_run
    assert main(["train", "--method", "edpcnn", "--iterations", "4", *TINY_ARGS,
                 "--out", str(run), "--resume"]) == 2
    assert "last.pt" in capsys.readouterr().err
    assert not marker.exists()


def test_the_cli_process_refuses_it_too(hostile_run: tuple[Path, Path]) -> None:
    run, marker = hostile_run
    done = subprocess.run([sys.executable, "-m", "lvseg.cli", "evaluate", str(run)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "best.pt" in done.stderr and "unreadable" in done.stderr
    assert not marker.exists()


def test_no_torch_load_without_weights_only_in_the_project() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.rglob("*.py"):
        if any(part in {".venv", "_build", ".git"} for part in path.parts):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "torch.load(" in line and "weights_only=True" not in line and path != Path(__file__):
                offenders.append(f"{path.relative_to(root)}:{number}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"
