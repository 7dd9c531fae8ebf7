"""``lvseg train`` under torchrun: 2 gloo processes on 127.0.0.1 train, checkpoint and resume,
and every rank ends with the same weights (U-Net and surrogate); every way out of ``lvseg
train`` ends the process group it started (in-process here, with a one-process group)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import lvseg.cli
from lvseg.distributed import Ranks
from lvseg.rundir import RunDirError
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, tiny_config

#: runs the real CLI, then gathers a hash of every rank's model state (rank 0 writes them); a
#: rank whose process group or its gloo threads outlive the CLI exits with 1 (Linux: /proc)
DRIVER = '''
import hashlib, json, os, sys
from pathlib import Path
import torch
import lvseg.cli, lvseg.train

fit = lvseg.train.Trainer.fit
def fit_and_hash(self):
    summary = fit(self)
    state = self.model.state_dict()
    digest = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes()
                                     for v in state.values() if torch.is_tensor(v))).hexdigest()
    hashes = [None] * self.ranks.size
    torch.distributed.all_gather_object(hashes, digest)
    if self.ranks.main:
        (self.run_dir / "hashes.json").write_text(json.dumps(hashes))
    return summary
lvseg.train.Trainer.fit = fit_and_hash

if os.environ.get("SIGINT_RANK") == os.environ["RANK"]:  # Ctrl-C on this rank only, once
    import signal
    step = lvseg.train.Trainer.step
    def step_then_interrupt(self):
        event = step(self)
        if self.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return event
    lvseg.train.Trainer.step = step_then_interrupt
code = lvseg.cli.main(sys.argv[1:])
# a group (or its threads, kept by a DDP model) left to the interpreter's exit could abort a rank
threads = [(task / "comm").read_text().strip() for task in Path("/proc/self/task").iterdir()]
if torch.distributed.is_initialized() or any("gloo" in name for name in threads):
    sys.exit(f"rank {os.environ['RANK']}: lvseg train left its process group or its threads "
             f"({sorted(threads)})")
sys.exit(code)
'''


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(driver: Path, *args: str, sigint_rank: str = "", code: int = 0) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(_port()), str(driver),
               "train", "--method", "edpcnn", *TINY_ARGS, *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SIGINT_RANK": sigint_rank}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == code, result.stderr[-3000:]
    return result.stderr


def test_two_processes_train_checkpoint_resume_identically(tmp_path: Path) -> None:
    driver, run = tmp_path / "driver.py", tmp_path / "run"
    driver.write_text(DRIVER)
    _torchrun(driver, "--out", str(run), "--iterations", "2")
    first = json.loads((run / "hashes.json").read_text())
    assert len(first) == 2 and first[0] == first[1]
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 2
    _torchrun(driver, "--out", str(run), "--iterations", "4", "--resume")
    second = json.loads((run / "hashes.json").read_text())
    assert second[0] == second[1] and second[0] != first[0]
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 4
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in steps if e["event"] == "step"] == [1, 2, 3, 4]  # rank 0's log


def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_iteration(tmp_path: Path) -> None:
    driver, run = tmp_path / "driver.py", tmp_path / "run"
    driver.write_text(DRIVER)
    # SIGINT to rank 1 alone at the end of iteration 1 of 4; the ranks learn of it in the next
    # step's all-reduce, so both stop after iteration 2, where rank 0 saves (checkpoints are
    # every 3 here, so that save comes from the stop); the processes exit with 130, and torchrun
    # (which ends the others once one has exited) with 1
    err = _torchrun(driver, "--out", str(run), "--iterations", "4", "--checkpoint-every", "3",
                    sigint_rank="1", code=1)  # fmt: skip
    assert "exitcode  : 130" in err  # rank 0's message may be cut by torchrun's SIGTERM
    assert torch.load(run / "last.pt", weights_only=True)["iteration"] == 2
    assert not (run / "hashes.json").exists()  # fit raised on both ranks


@pytest.fixture
def torchrun_alone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``WORLD_SIZE=2`` as under torchrun, but :class:`Ranks` starts a one-process gloo group
    in memory (no peer to wait for); the group a failing test left is ended after it."""
    start = torch.distributed.init_process_group
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: start(
        backend, store=torch.distributed.HashStore(), rank=0, world_size=1))
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def test_ranks_close_ends_the_group_it_started_once(torchrun_alone: None) -> None:
    ranks = Ranks(torch.device("cpu"))
    assert torch.distributed.is_initialized() and (ranks.rank, ranks.size) == (0, 1)
    ranks.close()
    assert not torch.distributed.is_initialized()
    ranks.close()  # again: nothing
    assert not torch.distributed.is_initialized()


def test_ranks_close_leaves_a_group_the_caller_started() -> None:
    torch.distributed.init_process_group("gloo", store=torch.distributed.HashStore(), rank=0,
                                         world_size=1)  # fmt: skip
    try:
        Ranks(torch.device("cpu")).close()
        assert torch.distributed.is_initialized()
    finally:
        torch.distributed.destroy_process_group()


def test_a_trainer_that_cannot_start_ends_its_group(torchrun_alone: None,
                                                    tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("someone else's")
    with pytest.raises(RunDirError, match="already exists and is not empty"):
        Trainer(tiny_config(iterations=1), tmp_path)
    assert not torch.distributed.is_initialized()


def test_lvseg_train_ends_its_group_on_success_and_on_error(torchrun_alone: None,
                                                            tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--method", "edpcnn", *TINY_ARGS, "--iterations", "1", "--out", str(run)]
    assert lvseg.cli.main(args) == 0
    assert (run / "last.pt").is_file() and not torch.distributed.is_initialized()
    assert _gloo_threads() == []  # ended while the interpreter lives, not at its exit
    assert lvseg.cli.main(args) == 2  # the run exists: refused after the group started
    assert not torch.distributed.is_initialized() and _gloo_threads() == []


def _gloo_threads() -> list[str]:
    """The names of this process's gloo threads (``/proc/self/task``, Linux)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        pytest.skip("needs /proc/self/task (Linux) to list the threads")
    names = [(task / "comm").read_text().strip() for task in tasks.iterdir()]
    return [name for name in names if "gloo" in name]
