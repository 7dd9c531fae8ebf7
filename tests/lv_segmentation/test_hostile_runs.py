"""Hostile run directories and faults of ``lvseg`` from the second reliability probe (issue #22):
divergence, planted links, checkpoints that do not fit or are unsafe, a full disk.

Bad values and files given to the commands are ``test_hostile_inputs.py``. Each case ends in one ``lvseg: error: ...`` line (or one refusal) naming the argument or file,
what was expected and what was received, before anything is created; no traceback, no file
outside the run changed. The lvseg table of ``docs/reliability.md`` lists them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import lvseg.checkpoint as ckpt
from lvseg.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lvseg.rundir import RunDirError, RunLock
from lvseg.cli import main
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, disc, one_error_line, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------- 1. divergence
@pytest.mark.parametrize("method", ["unet", "edpcnn", "edpcnn-es"])
def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--method", method, *TINY_ARGS, "--iterations", "6", "--lr", "1e6",
            "--checkpoint-every", "1", "--out", str(out)]
    assert main(args) == 2  # was: exit 0 with NaN weights (unet), a DP traceback (edpcnn)
    line = one_error_line(capsys)
    assert line.startswith("lvseg: error: training diverged at iteration 2: ")
    assert f"{out}/last.pt holds iteration 1, the last good checkpoint" in line
    assert "Lower --lr (now 1e+06)" in line
    state = load_checkpoint(out / "last.pt")
    assert state["iteration"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values()
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def test_a_run_that_diverged_before_its_first_checkpoint_can_be_started_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    base = ["train", "--method", "unet", *TINY_ARGS, "--iterations", "2", "--out", str(out)]
    assert main([*base, "--lr", "1e6"]) == 2
    assert "no checkpoint was saved yet: run the command again" in one_error_line(capsys)
    assert main([*base, "--resume"]) == 2
    assert "it has no last.pt checkpoint yet (it stopped before its first checkpoint); run the " \
        "same command without --resume to start it afresh" in one_error_line(capsys)
    assert main(base) == 0  # the corrected command (was: refused as "not empty")
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in steps if e["event"] == "step"] == [1, 2]


# ------------------------------------------------------------- 9. symbolic links
@pytest.mark.parametrize("dangling", [False, True])
def test_a_lock_file_that_is_a_link_is_refused_and_its_target_unchanged(
    unet_run: Path, tmp_path: Path, dangling: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious\n")
    (unet_run / "lvseg.lock").unlink()
    (unet_run / "lvseg.lock").symlink_to(victim)
    assert main(["train", "--method", "unet", "--resume", "--iterations", "4",
                 "--out", str(unet_run)]) == 2
    assert (f"{unet_run}/lvseg.lock is a symbolic link; lvseg never writes through a link in a "
            "run directory") in one_error_line(capsys)
    if dangling:
        assert not victim.exists()  # was: created
    else:
        assert victim.read_text() == "precious\n"  # was: truncated, then the pid written
    with pytest.raises(RunDirError, match="is a symbolic link"):  # the lock itself
        RunLock(unet_run).acquire()


def test_metrics_jsonl_that_is_a_link_is_refused(unet_run: Path, tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (unet_run / "metrics.jsonl").unlink()
    (unet_run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(RunDirError, match=r"metrics.jsonl is a symbolic link"):
        Trainer(tiny_config("unet", iterations=4), unet_run, data=tiny_data, resume=True)
    assert victim.read_text() == "precious\n"


def test_predict_replaces_a_planted_link_instead_of_writing_through_it(
    tiny_runs: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "108.npy"
    np.save(path, disc())
    out = tmp_path / "pred"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "108_mask.npy").symlink_to(victim)
    assert main(["predict", str(tiny_runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(out)]) == 0
    assert victim.read_text() == "precious\n"  # was: overwritten with the mask
    assert not (out / "108_mask.npy").is_symlink()
    assert np.load(out / "108_mask.npy").shape == (100, 120)


# ------------------------------------------------------------- 10. checkpoints that do not fit
def test_an_es_checkpoint_in_a_surrogate_run_is_one_paragraph(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(tiny_runs["edpcnn-es"], tmp_path / "run"))
    shutil.copy(tiny_runs["edpcnn"] / "config.json", run / "config.json")
    image = tmp_path / "slice.npy"
    np.save(image, disc())
    for args in (["evaluate", str(run)],
                 ["predict", str(run), str(image), "--center", "60,50", "--out",
                  str(tmp_path / "p")],
                 ["train", "--method", "edpcnn", "--resume", "--iterations", "4", "--out",
                  str(run)]):
        assert main(args) == 2  # was: a 22-line AttributeError
        line = one_error_line(capsys)
        assert ".pt does not fit the run's config.json" in line
        assert "method: 'edpcnn-es' in the checkpoint, 'edpcnn' in config.json" in line


def _crafted(run: Path, change) -> None:  # type: ignore[no-untyped-def]
    state = load_checkpoint(run / "last.pt")
    change(state)
    state.pop("format")
    save_checkpoint(run / "last.pt", state)


def _first_weight(state: dict, value) -> None:  # type: ignore[no-untyped-def,type-arg]
    key = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][key] = value(state["model"][key])


@pytest.mark.parametrize(
    ("change", "message"),
    [(lambda s: s.update(iteration=-5), "its iteration must be an integer >= 1; got -5"),
     (lambda s: s.update(iteration=1.5), "its iteration must be an integer >= 1; got 1.5"),
     (lambda s: s.update(best_iteration=7), "its best_iteration must be an integer in [0, 2]"),
     (lambda s: s.update(best_dice="x"), "its best_dice must be a finite number or -inf"),
     (lambda s: s["sampler"].update(order=torch.arange(100, 108)),
      "sampler order must be a permutation of the 8 training items"),
     (lambda s: s["sampler"].update(position=-1),
      "sampler position must be an integer in [0, 8]; got -1"),
     (lambda s: _first_weight(s, lambda w: w.long()), "has dtype torch.int64, the model's "
      "torch.float32 (a crafted or foreign checkpoint)"),
     (lambda s: _first_weight(s, lambda w: w * float("nan")), "NaN/inf value(s) (saved from a "
      "diverged run, or damaged)")],
)  # fmt: skip
def test_every_field_of_a_crafted_last_pt_is_checked(
    unet_run: Path, tiny_data, change, message: str  # type: ignore[no-untyped-def]
) -> None:
    _crafted(unet_run, change)
    before = (unet_run / "metrics.jsonl").read_bytes()
    with pytest.raises((CheckpointError, RunDirError)) as info:
        Trainer(tiny_config("unet", iterations=4), unet_run, data=tiny_data, resume=True)
    assert message in str(info.value) and "last.pt" in str(info.value)
    assert (unet_run / "metrics.jsonl").read_bytes() == before


# ------------------------------------------------------------- 11. unsafe checkpoints
class _RunsCode:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("true",))


@pytest.mark.parametrize("kind", ["crafted", "random"])
def test_an_unsafe_best_pt_is_refused_in_one_line_without_torch_s_advice(
    unet_run: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "crafted":
        torch.save({"format": "lvseg-checkpoint-v1", "x": _RunsCode()}, unet_run / "best.pt")
        why = (f"refused checkpoint {unet_run}/best.pt: it is unreadable as tensors and plain "
               "values: it asks the unpickler for the Python object posix.system")
    else:
        (unet_run / "best.pt").write_bytes(np.random.default_rng(0).bytes(2000))
        why = (f"checkpoint {unet_run}/best.pt is unreadable: its content is not a torch "
               "checkpoint")
    assert main(["evaluate", str(unet_run)]) == 2
    line = one_error_line(capsys)
    assert why in line
    assert "It is not safe to load (not even with weights_only=False)" in line
    assert "will likely succeed" not in line


# ------------------------------------------------------------- 12. disk full
def test_disk_full_while_predict_writes_leaves_no_truncated_mask(
    tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "108.npy"
    np.save(path, disc())
    out = tmp_path / "pred"
    original = np.save

    def full(file, array, *args, **kwargs):  # type: ignore[no-untyped-def]
        Path(file).write_bytes(b"\x93NUMPY")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    assert main(["predict", str(tiny_runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line == (f"lvseg: error: cannot write {out}/108_mask.npy: the disk is full; no "
                    "partial file was left there")
    assert sorted(p.name for p in out.iterdir()) == []  # no truncated file, no temporary
    monkeypatch.setattr(np, "save", original)


def test_disk_full_before_the_first_best_pt_says_so_and_the_run_can_start_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = ckpt.atomic_write_bytes
    state = {"full": True}

    def full_disk(path, data):  # type: ignore[no-untyped-def]
        if state["full"] and Path(path).name == "best.pt":
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", full_disk)
    out = tmp_path / "run"
    args = ["train", "--method", "unet", *TINY_ARGS, "--iterations", "2", "--out", str(out)]
    assert main(args) == 2
    line = one_error_line(capsys)
    assert line == (f"lvseg: error: cannot write the checkpoint {out}/best.pt: the disk is full; "
                    "no best.pt was written (there was none before)")  # was: "... is intact"
    state["full"] = False  # space freed: the same command starts the run afresh
    assert main(args) == 0
    assert load_checkpoint(out / "best.pt")["iteration"] == 2


