"""Faults and bad inputs of ``lvseg`` (issue #8): each ends in a clear message or a correct result.

The table in ``docs/reliability_lvseg.md`` lists every case with its test here.
"""

from __future__ import annotations

import errno
import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import lvseg.checkpoint as ckpt
from lvseg.checkpoint import CheckpointError, load_checkpoint
from lvseg.rundir import RunDirError, RunLock
from lvseg.cli import main
from lvseg.config import TrainConfig
from lvseg.evaluate import evaluate_run
from lvseg.train import Trainer, TrainingInterrupted
from lvseg_testing import TINY_ARGS, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_data) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("reliability") / "edpcnn"
    Trainer(tiny_config("edpcnn", iterations=2), out, data=tiny_data).fit()
    return out


def _one_patient(folder: Path) -> Path:
    """Drop the second patient of the ``small_sunnybrook`` copy."""
    shutil.rmtree(folder / "dicoms" / "SCD0000201")
    shutil.rmtree(folder / "contourfiles" / "SC-HF-I-2")
    (folder / "link.csv").write_text("patient_id,original_id\nSCD0000101,SC-HF-I-1\n")
    return folder


# ----------------------------------------------------------------------- evaluate any folder
@pytest.mark.parametrize("patients", [1, 2])
def test_evaluate_all_works_on_a_folder_of_one_or_two_patients(
    run: Path, small_sunnybrook: Path, tmp_path: Path, patients: int, capsys
) -> None:  # type: ignore[no-untyped-def]
    folder = small_sunnybrook if patients == 2 else _one_patient(small_sunnybrook)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--data", "sunnybrook", "--data-dir", str(folder),
                 "--split", "all", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 3 * patients and result["data_dir"] == str(folder.resolve())
    assert f"on sunnybrook ({folder.resolve()})/all, n={3 * patients}" in capsys.readouterr().out


def test_data_dir_is_stored_absolute_and_evaluate_names_it(
    run: Path, small_sunnybrook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(small_sunnybrook.parent)
    config = TrainConfig(method="unet", data="sunnybrook", data_dir=small_sunnybrook.name)
    assert config.to_dict()["data_dir"] == str(small_sunnybrook.resolve())
    result = evaluate_run(run, data="sunnybrook", data_dir=small_sunnybrook.name, split="all")
    assert result["data_dir"] == str(small_sunnybrook.resolve())
    assert evaluate_run(run, split="test")["data_dir"] is None  # generated data: no folder


# ----------------------------------------------------------------------- predict
def _disc(value: float = 1.0, shape: tuple[int, int] = (100, 120)) -> np.ndarray:
    image = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image[(xx - 60) ** 2 + (yy - 50) ** 2 < 15**2] = value
    return image


def test_predict_gives_inputs_with_the_same_stem_their_own_outputs(run: Path, tmp_path: Path) -> None:
    for patient, value in (("SCD0000201", 1.0), ("SCD0000301", 3.0)):
        (tmp_path / patient).mkdir()
        np.save(tmp_path / patient / "47.npy", _disc(value, (100, 120 if value == 1 else 110)))
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(tmp_path / "SCD0000201" / "47.npy"),
                 str(tmp_path / "SCD0000301" / "47.npy"), "--center", "60,50",
                 "--out", str(out)]) == 0
    a, b = np.load(out / "SCD0000201_47_mask.npy"), np.load(out / "SCD0000301_47_mask.npy")
    assert a.shape == (100, 120) and b.shape == (100, 110)  # neither overwrote the other


def test_predict_refuses_names_it_cannot_tell_apart_before_writing(
    run: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    for root in ("x", "y"):
        (tmp_path / root / "a").mkdir(parents=True)
        np.save(tmp_path / root / "a" / "47.npy", _disc())
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(tmp_path / "x/a/47.npy"), str(tmp_path / "y/a/47.npy"),
                 "--center", "60,50", "--out", str(out)]) == 2
    assert "would both write a_47_mask.npy; rename one" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("image", "extra", "message"),
    [(_disc(), ["--spacing", "0"], "spacing must be a positive number; got 0.0"),
     (np.full((100, 120), np.nan, np.float32), [],
      "has 12000 of 12000 pixels that are NaN or infinite"),
     (np.full((100, 120), 7.0, np.float32), [], "is constant (every pixel is 7)")],
)  # fmt: skip
def test_predict_checks_its_inputs_and_leaves_no_folder(
    run: Path, tmp_path: Path, image: np.ndarray, extra: list[str], message: str, capsys
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "slice.npy"
    np.save(path, image)
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(path), "--center", "60,50", *extra,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_spacing_is_refused_by_the_parser(run: Path, tmp_path: Path, value: str,
                                                       capsys) -> None:  # type: ignore[no-untyped-def]
    """--spacing is a PredictConfig field: the generated parser checks it before any file."""
    with pytest.raises(SystemExit):
        main(["predict", str(run), str(tmp_path / "x.npy"), "--center", "60,50", "--spacing",
              value, "--out", str(tmp_path / "pred")])
    err = capsys.readouterr().err
    assert f"argument --spacing: spacing must be a number or None; got {value}" in err
    assert not (tmp_path / "pred").exists()


def test_predict_help_says_how_to_find_the_centre(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Click the middle of the bright blood pool in a viewer" in help_text
    assert "centroid of a rough mask" in help_text


# ----------------------------------------------------------------------- resume
def test_a_partial_last_metrics_line_does_not_block_resume(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    Trainer(tiny_config("unet", iterations=2), run, data=tiny_data).fit()
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"event": "step", "iter')  # killed during the append
    with pytest.warns(UserWarning, match=r"metrics.jsonl: dropped a partial last line"):
        Trainer(tiny_config("unet", iterations=4), run, data=tiny_data, resume=True).fit()
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]


def test_one_training_process_per_run_directory(tmp_path: Path, tiny_data, capsys) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    Trainer(tiny_config("unet", iterations=2), run, data=tiny_data).fit()
    other = RunLock(run).acquire()  # another process training this run (flock: per open file)
    try:
        with pytest.raises(RunDirError, match=r"is in use by another lvseg train process \(pid"):
            Trainer(tiny_config("unet", iterations=4), run, data=tiny_data, resume=True)
        code = main(["train", "--method", "unet", *TINY_ARGS, "--iterations", "4", "--resume",
                     "--out", str(run)])
        assert code == 2 and "is in use by another lvseg train process" in capsys.readouterr().err
    finally:
        other.release()
    Trainer(tiny_config("unet", iterations=4), run, data=tiny_data, resume=True).fit()  # free again


def test_resume_below_the_finished_iteration_is_refused(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    run = tmp_path / "run"
    Trainer(tiny_config("unet", iterations=4), run, data=tiny_data).fit()
    before = (run / "config.json").read_bytes()
    with pytest.raises(RunDirError, match="has already finished iteration 4; pass --iterations 4"):
        Trainer(tiny_config("unet", iterations=2), run, data=tiny_data, resume=True)
    assert (run / "config.json").read_bytes() == before


# ----------------------------------------------------------------------- interruptions
def _interrupt_at(iteration: int):  # type: ignore[no-untyped-def]
    def hook(trainer: Trainer, event: dict) -> None:  # type: ignore[type-arg]
        if event["event"] == "step" and event["iteration"] == iteration:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C in the middle of the run
    return hook


def test_ctrl_c_saves_the_current_iteration_and_resumes_exactly(tmp_path: Path, tiny_data) -> None:  # type: ignore[no-untyped-def]
    straight = tmp_path / "straight"
    Trainer(tiny_config("edpcnn", iterations=5), straight, data=tiny_data).fit()
    run = tmp_path / "run"
    trainer = Trainer(tiny_config("edpcnn", iterations=5), run, data=tiny_data)
    trainer.add_hook(_interrupt_at(3))
    before = signal.getsignal(signal.SIGINT)  # default, or ignored in a background job
    with pytest.raises(TrainingInterrupted, match="interrupted after iteration 3"):
        trainer.fit()
    assert load_checkpoint(run / "last.pt")["iteration"] == 3
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    Trainer(tiny_config("edpcnn", iterations=5), run, data=tiny_data, resume=True).fit()
    a, b = load_checkpoint(straight / "last.pt")["model"], load_checkpoint(run / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def test_ctrl_c_on_the_command_line_prints_the_resume_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    original = Trainer.fit

    def fit(self: Trainer) -> dict:  # type: ignore[type-arg]
        self.add_hook(_interrupt_at(2))
        return original(self)

    monkeypatch.setattr(Trainer, "fit", fit)
    out = tmp_path / "run"
    assert main(["train", "--method", "unet", *TINY_ARGS, "--iterations", "4",
                 "--out", str(out)]) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if "interrupted" in line]
    assert lines == [f"lvseg: interrupted; {out}/last.pt saved at iteration 2; resume with: "
                     f"lvseg train --method unet --out {out} --resume"]


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    writes = {"last.pt": 0}
    original = ckpt.atomic_write_bytes

    def full_disk(path, data):  # type: ignore[no-untyped-def]
        if Path(path).name == "last.pt":
            writes["last.pt"] += 1
            if writes["last.pt"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", full_disk)
    out = tmp_path / "run"
    assert main(["train", "--method", "unet", *TINY_ARGS, "--iterations", "4",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (f"lvseg: error: cannot write the checkpoint {out}/last.pt: the disk is full; the "
            "previous last.pt is intact\n") in err
    assert load_checkpoint(out / "last.pt")["iteration"] == 2


def test_a_checkpoint_that_does_not_fit_the_config_is_one_paragraph(
    run: Path, tmp_path: Path, tiny_data, capsys
) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "unet"
    Trainer(tiny_config("unet", iterations=2), other, data=tiny_data).fit()
    shutil.copy(run / "config.json", other / "config.json")  # config of an edpcnn run
    assert main(["evaluate", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 800
    assert "best.pt does not fit the run's config.json" in err
    assert "method: 'unet' in the checkpoint, 'edpcnn' in config.json" in err
    with pytest.raises(CheckpointError, match="tensors missing"):
        Trainer(tiny_config("edpcnn", iterations=4), other, data=tiny_data, resume=True)


# ----------------------------------------------------------------------- devices
def test_device_option_on_a_cpu_machine(tmp_path: Path, tiny_data, monkeypatch: pytest.MonkeyPatch,
                                        capsys) -> None:  # type: ignore[no-untyped-def]
    from lvseg.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'cuda' was asked for, but torch .* sees no CUDA"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be one of 'auto', 'cpu', 'cuda'; got 'tpu'"):
        resolve_device("tpu")
    # --device cpu and auto give the same numbers as before (the default)
    a, b = tmp_path / "a", tmp_path / "b"
    Trainer(tiny_config("edpcnn", iterations=2), a, data=tiny_data).fit()
    Trainer(tiny_config("edpcnn", iterations=2), b, data=tiny_data, device="auto").fit()
    wa, wb = load_checkpoint(a / "last.pt")["model"], load_checkpoint(b / "last.pt")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa if isinstance(wa[k], torch.Tensor))
    assert evaluate_run(a, split="val", device="cpu")["dice"] == evaluate_run(b, split="val")["dice"]
    out = tmp_path / "c"
    assert main(["train", "--method", "unet", *TINY_ARGS, "--iterations", "1", "--device",
                 "cuda", "--out", str(out)]) == 2
    assert "sees no CUDA device; use --device cpu" in capsys.readouterr().err
    assert not out.exists()
