"""``lvseg train`` under torchrun: 2 gloo processes on 127.0.0.1 train, checkpoint and resume,
and every rank ends with the same weights (U-Net and surrogate)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import torch

from lvseg_testing import TINY_ARGS

#: runs the real CLI, then gathers a hash of every rank's model state (rank 0 writes them)
DRIVER = '''
import hashlib, json, os, sys
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
sys.exit(lvseg.cli.main(sys.argv[1:]))
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


#: A native abort of one rank under torchrun, seen in about 1 of 7 runs on the shared 2-core
#: machine (2026-12-06, before and after that day's changes; cause not found yet: it comes from
#: C++, "terminate called" with no Python traceback, right after the rank's start-up line).
NATIVE_ABORT = "terminate called without an active exception"


def test_two_processes_train_checkpoint_resume_identically(tmp_path: Path) -> None:
    """Run once more, in a fresh folder, only if a rank died of :data:`NATIVE_ABORT` (with a
    warning that names it); any other failure fails the test."""
    try:
        _train_and_resume(tmp_path / "first")
    except AssertionError as error:
        if NATIVE_ABORT not in str(error):
            raise
        warnings.warn(f"a torchrun rank died of {NATIVE_ABORT!r}; ran the test again",
                      stacklevel=1)
        _train_and_resume(tmp_path / "again")


def _train_and_resume(tmp_path: Path) -> None:
    tmp_path.mkdir()
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
