"""Checkpoints and run directories: atomic writes, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lvseg.rundir as rundir
from lvseg.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lvseg.rundir import RunDirError, atomic_write_bytes, read_config, write_config


def test_round_trip(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "a.pt", {"iteration": 3, "w": torch.arange(4.0)})
    state = load_checkpoint(tmp_path / "a.pt")
    assert state["iteration"] == 3 and torch.equal(state["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left


def test_crash_mid_write_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"iteration": 1, "w": torch.ones(1000)})
    before = path.read_bytes()

    def crash(fd: int) -> None:  # the new bytes are (partly) on disk, then the process dies
        raise KeyboardInterrupt("simulated crash during the checkpoint write")

    monkeypatch.setattr(rundir.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"iteration": 2, "w": torch.zeros(1000)})
    assert path.read_bytes() == before
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_crash_before_the_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.json"
    atomic_write_bytes(path, b"old")

    def no_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(rundir.os, "replace", no_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is unreadable"), (b"PK\x03\x04 truncated zip", "is unreadable"),
     (None, "is not an lvseg checkpoint")],
)  # fmt: skip
def test_broken_checkpoints_are_clear_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "best.pt"
    if content is None:
        torch.save({"weights": 1}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        read_config(tmp_path / "missing")
    with pytest.raises(RunDirError, match="config.json is missing"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RunDirError, match="is not valid JSON"):
        read_config(tmp_path)
    write_config(tmp_path, {"method": "unet"})
    assert read_config(tmp_path) == {"method": "unet"}
    assert os.listdir(tmp_path) == ["config.json"]


def test_load_run_of_an_edpcnn_run_builds_no_optimiser(run: Path) -> None:
    """Loading a trained EDPCNN for prediction never builds its surrogate's Adam, whose
    construction imports torch._dynamo; checked in a fresh interpreter. (Failed when the Adam
    was built with the Surrogate.) Building it later restores the checkpoint's optimiser state
    exactly."""
    code = (
        "import sys, torch\n"
        "from lvseg.runs import load_run\n"
        f"loaded = load_run({str(run)!r}, 'last')\n"
        "print('torch._dynamo' in sys.modules)\n"
        f"state = torch.load({str(run / 'last.pt')!r}, weights_only=True)['model']\n"
        "ours = loaded.model.state_dict()\n"  # builds the Adam, with the checkpoint's state
        "extra = [k for k in state if k.endswith('_extra_state')]\n"
        "print(bool(extra) and all(str(ours[k]) == str(state[k]) for k in extra))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
