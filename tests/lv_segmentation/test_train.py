"""The training loop: exact resume, run-directory safety, sampler state, hooks and data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lvseg.checkpoint import CheckpointError, load_checkpoint

from lvseg.rundir import RunDirError
from lvseg.methods import build_model
from lvseg.prepare import prepare_data
from lvseg.sampler import BatchSampler
from lvseg.train import Trainer
from lvseg_testing import same, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "last.pt")["model"]


@pytest.mark.parametrize("method", ["edpcnn", "edpcnn-es", "edpcnn-softdp", "unet"])
def test_resume_continues_exactly(tmp_path: Path, tiny_data, method: str) -> None:  # type: ignore[no-untyped-def]
    """2K iterations straight == K iterations, then a fresh process state resumed for K more."""
    straight = tmp_path / "straight"
    Trainer(tiny_config(method, iterations=4), straight, data=tiny_data).fit()

    split = tmp_path / "split"
    Trainer(tiny_config(method, iterations=2), split, data=tiny_data).fit()
    torch.manual_seed(12345)  # resuming must not depend on the global RNG state of the process
    resumed = Trainer(tiny_config(method, iterations=4), split, data=tiny_data, resume=True)
    assert resumed.iteration == 3
    resumed.fit()

    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for key in a:  # weights, and the surrogate's optimiser and noise generator
        assert same(a[key], b[key]), key
    sa, sb = load_checkpoint(straight / "last.pt"), load_checkpoint(split / "last.pt")
    for key in ("optimizer", "sampler", "numpy_rng", "python_rng", "torch_rng"):
        assert same(sa[key], sb[key]), key
    assert sa["best_dice"] == sb["best_dice"]
    # the metrics log has exactly one entry per step, as if the run had not been interrupted
    steps = [json.loads(line)["iteration"] for line in (split / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["event"] == "step"]
    assert steps == [1, 2, 3, 4]
    assert json.loads((split / "config.json").read_text())["iterations"] == 4


def test_surrogate_state_is_in_the_checkpoint(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    trainer = Trainer(tiny_config("edpcnn", iterations=2), tmp_path / "run", data=tiny_data)
    events = []
    trainer.add_hook(lambda t, e: events.append(e))
    trainer.fit()
    state = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    assert any(k.startswith("bypass.estimator.model.") for k in state)
    assert "bypass.estimator._extra_state" in state  # surrogate optimiser + noise generator
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2 and all(0 <= e["agreement"] <= 1 for e in steps)
    assert [e["event"] for e in events][-2:] == ["validation", "end"]
    assert (tmp_path / "run" / "best.pt").is_file()


def test_existing_run_is_never_overwritten(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    Trainer(tiny_config("unet", iterations=2), run, data=tiny_data).fit()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(RunDirError, match="already exists and is not empty; pass --resume"):
        Trainer(tiny_config("unet", iterations=2), run, data=tiny_data)
    with pytest.raises(RunDirError, match=r"options differ from its config.json \(method: 'unet' there"):
        Trainer(tiny_config("edpcnn", iterations=4), run, data=tiny_data, resume=True)
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert before == after


def test_resume_errors(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RunDirError, match="does not exist"):
        Trainer(tiny_config(), tmp_path / "nothing", data=tiny_data, resume=True)
    run = tmp_path / "run"
    Trainer(tiny_config("unet", iterations=2), run, data=tiny_data).fit()
    (run / "last.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="last.pt is unreadable"):
        Trainer(tiny_config("unet", iterations=4), run, data=tiny_data, resume=True)
    (run / "last.pt").unlink()
    with pytest.raises(RunDirError, match="has no last.pt checkpoint yet"):
        Trainer(tiny_config("unet", iterations=4), run, data=tiny_data, resume=True)


def test_batch_sampler_epochs_and_state() -> None:
    sampler = BatchSampler(5, 2, seed=0)
    epoch = torch.cat([sampler.next() for _ in range(3)])
    assert sorted(epoch.tolist()) == [0, 1, 2, 3, 4]  # a batch never spans two epochs
    state = sampler.state_dict()
    expected = [sampler.next() for _ in range(4)]
    sampler.load_state_dict(state)
    assert all(torch.equal(a, sampler.next()) for a in expected)


def test_prepare_data_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="train_size must be at most the 8 slices of the training split"):
        prepare_data(tiny_config(train_size=9))
    with pytest.raises(FileNotFoundError, match="data directory .*missing does not exist"):
        prepare_data(tiny_config(data="sunnybrook", data_dir=str(tmp_path / "missing")))


def test_telescopic_training_subsets_are_nested() -> None:
    small = prepare_data(tiny_config(train_size=3)).train
    large = prepare_data(tiny_config(train_size=6)).train
    assert set(small.tolist()) <= set(large.tolist()) and len(small) == 3


def test_config_validation_names_the_option() -> None:
    with pytest.raises(ValueError, match="method must be one of 'unet', 'unet-dp', 'edpcnn', 'edpcnn-es'"):
        tiny_config("cnn")
    with pytest.raises(ValueError, match="lr must be a positive number; got -1"):
        tiny_config(lr=-1)
    # options passed on to a constructor are checked by it, when the model is built
    with pytest.raises(ValueError, match=r"samples must be even when antithetic=True .*got 3"):
        build_model(tiny_config("edpcnn-es", samples=3))
    with pytest.raises(ValueError, match="sigma must be a positive number; got -1"):
        build_model(tiny_config(sigma=-1))
    assert build_model(tiny_config(fit_steps=0)).bypass.estimator.fit_steps == 0  # Surrogate's rule


def test_a_bad_model_option_fails_before_the_data_is_loaded(tmp_path: Path) -> None:
    # the option's bounds are checked by the config (the same for the CLI and config.json) ...
    with pytest.raises(ValueError, match=r"unet_depth must be an integer in \[0, 7\]; got -1"):
        tiny_config("unet", unet_depth=-1)
    # ... and what only the model can say by its constructor, before data or folders
    config = tiny_config("unet", unet_channels=128, unet_depth=7, data="sunnybrook",
                         data_dir=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="would have 7426 M weights, more than the 120 M"):
        Trainer(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
