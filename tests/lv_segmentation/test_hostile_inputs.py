"""Bad values, files and faults of ``lvseg`` from the second reliability probe (issue #22).

Each case ends in one ``lvseg: error: ...`` line (or one refusal) naming the argument or file,
what was expected and what was received, before anything is created; no traceback, no file
outside the run changed. The lvseg table of ``docs/reliability.md`` lists them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

import lvseg.checkpoint as ckpt
from lvseg.checkpoint import CheckpointError, RunDirError, load_checkpoint, save_checkpoint
from lvseg.cli import main
from lvseg.data import resample
from lvseg.prepare import prepare_data
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, one_thread, tiny_config  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return prepare_data(tiny_config())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("hostile")
    out = {}
    for method in ("unet", "edpcnn", "edpcnn-es"):
        out[method] = root / method
        Trainer(tiny_config(method, iterations=2), out[method], data=data).fit()
    return out


@pytest.fixture()
def unet_run(runs: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the trained unet run that a test may change."""
    return Path(shutil.copytree(runs["unet"], tmp_path / "run"))


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("lvseg: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _disc(shape: tuple[int, int] = (100, 120)) -> np.ndarray:
    image = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image[(xx - 60) ** 2 + (yy - 50) ** 2 < 15**2] = 1.0
    return image


def _edit_dicom(folder: Path, **fields: object) -> Path:
    """Set DICOM ``fields`` in the first image of the ``small_sunnybrook`` copy."""
    path = sorted((folder / "dicoms" / "SCD0000101").iterdir())[0]
    ds = pydicom.dcmread(path)
    for name, value in fields.items():
        setattr(ds, name, value)
    ds.save_as(path)
    return path


# ------------------------------------------------------------- 1. divergence
@pytest.mark.parametrize("method", ["unet", "edpcnn", "edpcnn-es"])
def test_a_diverging_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["train", "--method", method, *TINY_ARGS, "--iterations", "6", "--lr", "1e6",
            "--checkpoint-every", "1", "--out", str(out)]
    assert main(args) == 2  # was: exit 0 with NaN weights (unet), a DP traceback (edpcnn)
    line = _one_error_line(capsys)
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
    assert "no checkpoint was saved yet: run the command again" in _one_error_line(capsys)
    assert main([*base, "--resume"]) == 2
    assert "it has no last.pt checkpoint yet (it stopped before its first checkpoint); run the " \
        "same command without --resume to start it afresh" in _one_error_line(capsys)
    assert main(base) == 0  # the corrected command (was: refused as "not empty")
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in steps if e["event"] == "step"] == [1, 2]


# ------------------------------------------------------------- 4, 7. pixel spacing and sizes
@pytest.mark.parametrize("spacing", ["0.01", "1000"])
def test_predict_refuses_an_implausible_spacing(
    runs: dict[str, Path], tmp_path: Path, spacing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slice.npy"
    np.save(path, _disc())
    out = tmp_path / "pred"
    assert main(["predict", str(runs["edpcnn"]), str(path), "--center", "60,50",
                 "--spacing", spacing, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert str(path) in line
    assert (f"spacing must be between 0.1 and 10 mm per pixel (short-axis cardiac MRI: about "
            f"0.5-3 mm); got {float(spacing):g} x {float(spacing):g} mm") in line
    assert not out.exists()


@pytest.mark.parametrize("spacing", [[300.0, 300.0], [0.001, 0.001]])
def test_a_dicom_with_an_implausible_spacing_is_named_before_resampling(
    runs: dict[str, Path], small_sunnybrook: Path, spacing: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _edit_dicom(small_sunnybrook, PixelSpacing=spacing)
    assert main(["evaluate", str(runs["unet"]), "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--split", "all"]) == 2
    line = _one_error_line(capsys)
    assert f"{path}: spacing must be between 0.1 and 10 mm per pixel" in line
    # predict reads the same file's spacing
    assert main(["predict", str(runs["unet"]), str(path), "--center", "100,100",
                 "--out", str(small_sunnybrook / "pred")]) == 2
    assert f"got {spacing[0]:g} x {spacing[1]:g} mm" in _one_error_line(capsys)


def test_a_nifti_with_zooms_of_500_is_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nibabel as nib

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(_disc()[:, :, None], np.diag([500.0, 500.0, 8.0, 1.0])), path)
    assert main(["predict", str(runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(tmp_path / "pred")]) == 2
    assert "got 500 x 500 mm" in _one_error_line(capsys)


def test_resample_checks_the_new_size_before_allocating() -> None:
    image = np.broadcast_to(np.float32(0), (2000, 2000))  # 10 mm pixels: 14599 x 14599 at 1.37
    with pytest.raises(ValueError, match=r"resampling the 2000x2000 image from 10 x 10 mm to 1.37 "
                       r"mm pixels would make it 14599x14599 pixels, more than the 16777216"):
        resample(image, np.zeros((2000, 2000), bool), (10.0, 10.0), 1.37)


# ------------------------------------------------------------- 8. model sizes
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--unet-channels", "100000", "unet_channels must be an integer in [1, 128]; got 100000"),
     ("--surrogate-channels", "100000",
      "surrogate_channels must be an integer in [1, 128]; got 100000"),
     ("--unet-depth", "8", "unet_depth must be an integer in [0, 7]; got 8"),
     ("--radius", "1e9", "radius must be a number <= 512; got 1000000000.0"),
     ("--seed", "1.5", "expected an integer; got '1.5'")],
)  # fmt: skip
def test_sizes_on_the_command_line_are_bounded_before_anything_is_created(
    tmp_path: Path, option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--method", "edpcnn", *TINY_ARGS, option, value, "--out", str(out)])
    assert exit_info.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err
    assert not out.exists()


def test_a_unet_too_large_for_memory_is_refused_by_its_constructor() -> None:
    from lvseg.models import UNet

    with pytest.raises(ValueError, match=r"a U-Net with base_channels=128 and depth=7 would have "
                       r"7426 M weights, more than the 120 M allowed; lower base_channels"):
        UNet(base_channels=128, depth=7)


# ------------------------------------------------------------- 14. config.json field by field
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("star", "x", "star must be a dict of star settings; got 'x'"),
     ("seed", 2**70, "seed must be an integer in [0, 4294967295]; got 1180591620717411303424"),
     ("unet_depth", 40, "unet_depth must be an integer in [0, 7]; got 40"),
     ("lr", "0.1", "lr must be a number; got '0.1'"),
     ("train_size", 1.5, "train_size must be an integer >= 1 or None; got 1.5"),
     ("batch_size", True, "batch_size must be an integer in [1, 1024]; got True"),
     ("method", 3, "method must be one of 'unet', 'unet-dp', 'edpcnn', 'edpcnn-es'; got 3")],
)  # fmt: skip
def test_a_hand_edited_config_is_checked_key_by_key(
    unet_run: Path, key: str, value: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((unet_run / "config.json").read_text())
    config[key] = value
    (unet_run / "config.json").write_text(json.dumps(config))
    for args in (["evaluate", str(unet_run)],
                 ["train", "--method", "unet", "--resume", "--out", str(unet_run)]):
        assert main(args) == 2
        assert f"lvseg: error: {unet_run}/config.json: {message}; correct it there" in (
            _one_error_line(capsys))


def test_a_star_radius_of_1e9_in_config_json_is_refused(
    unet_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((unet_run / "config.json").read_text())
    config["star"]["radius"] = 1e9
    (unet_run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", str(unet_run)]) == 2
    assert "config.json: radius must be a number <= 512; got 1000000000.0" in (
        _one_error_line(capsys))


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
            "run directory") in _one_error_line(capsys)
    if dangling:
        assert not victim.exists()  # was: created
    else:
        assert victim.read_text() == "precious\n"  # was: truncated, then the pid written
    with pytest.raises(RunDirError, match="is a symbolic link"):  # the lock itself
        ckpt.RunLock(unet_run).acquire()


def test_metrics_jsonl_that_is_a_link_is_refused(unet_run: Path, tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (unet_run / "metrics.jsonl").unlink()
    (unet_run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(RunDirError, match=r"metrics.jsonl is a symbolic link"):
        Trainer(tiny_config("unet", iterations=4), unet_run, data=data, resume=True)
    assert victim.read_text() == "precious\n"


def test_predict_replaces_a_planted_link_instead_of_writing_through_it(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "108.npy"
    np.save(path, _disc())
    out = tmp_path / "pred"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "108_mask.npy").symlink_to(victim)
    assert main(["predict", str(runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(out)]) == 0
    assert victim.read_text() == "precious\n"  # was: overwritten with the mask
    assert not (out / "108_mask.npy").is_symlink()
    assert np.load(out / "108_mask.npy").shape == (100, 120)


# ------------------------------------------------------------- 10. checkpoints that do not fit
def test_an_es_checkpoint_in_a_surrogate_run_is_one_paragraph(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Path(shutil.copytree(runs["edpcnn-es"], tmp_path / "run"))
    shutil.copy(runs["edpcnn"] / "config.json", run / "config.json")
    image = tmp_path / "slice.npy"
    np.save(image, _disc())
    for args in (["evaluate", str(run)],
                 ["predict", str(run), str(image), "--center", "60,50", "--out",
                  str(tmp_path / "p")],
                 ["train", "--method", "edpcnn", "--resume", "--iterations", "4", "--out",
                  str(run)]):
        assert main(args) == 2  # was: a 22-line AttributeError
        line = _one_error_line(capsys)
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
    unet_run: Path, data, change, message: str  # type: ignore[no-untyped-def]
) -> None:
    _crafted(unet_run, change)
    before = (unet_run / "metrics.jsonl").read_bytes()
    with pytest.raises((CheckpointError, RunDirError)) as info:
        Trainer(tiny_config("unet", iterations=4), unet_run, data=data, resume=True)
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
    line = _one_error_line(capsys)
    assert why in line
    assert "It is not safe to load (not even with weights_only=False)" in line
    assert "will likely succeed" not in line


# ------------------------------------------------------------- 12. disk full
def test_disk_full_while_predict_writes_leaves_no_truncated_mask(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "108.npy"
    np.save(path, _disc())
    out = tmp_path / "pred"
    original = np.save

    def full(file, array, *args, **kwargs):  # type: ignore[no-untyped-def]
        Path(file).write_bytes(b"\x93NUMPY")  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    assert main(["predict", str(runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(out)]) == 2
    line = _one_error_line(capsys)
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
    line = _one_error_line(capsys)
    assert line == (f"lvseg: error: cannot write the checkpoint {out}/best.pt: the disk is full; "
                    "no best.pt was written (there was none before)")  # was: "... is intact"
    state["full"] = False  # space freed: the same command starts the run afresh
    assert main(args) == 0
    assert load_checkpoint(out / "best.pt")["iteration"] == 2


# ------------------------------------------------------------- 13. non-finite pixels
def test_a_dicom_whose_rescale_slope_overflows_is_named_at_load(
    runs: dict[str, Path], small_sunnybrook: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _edit_dicom(small_sunnybrook, RescaleSlope="1e38")
    expected = f"{path} has "
    assert main(["evaluate", str(runs["edpcnn"]), "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--split", "all"]) == 2
    line = _one_error_line(capsys)  # was: the DP's "cost must be finite", naming no file
    assert expected in line and "pixels that are NaN or infinite" in line
    assert "RescaleSlope/Intercept beyond float32" in line
    out = tmp_path / "run"
    assert main(["train", "--method", "unet", "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--train-size", "all", "--iterations", "1",
                 "--no-progress", "--out", str(out)]) == 2
    assert expected in _one_error_line(capsys)
    assert not out.exists()


# ------------------------------------------------------------- smaller items
def _main_without_escape(args: list[str]) -> int:
    try:
        return main(args)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped lvseg (a traceback on the command line)")


def test_a_second_ctrl_c_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    original = Trainer.fit

    def fit(self: Trainer) -> dict:  # type: ignore[type-arg]
        def twice(trainer: Trainer, event: dict) -> None:  # type: ignore[type-arg]
            if event["event"] == "step" and event["iteration"] == 1:
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)  # the second one stops at once
        self.add_hook(twice)
        return original(self)

    monkeypatch.setattr(Trainer, "fit", fit)
    assert _main_without_escape(["train", "--method", "unet", *TINY_ARGS, "--iterations", "4",
                                 "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "lvseg: interrupted at once (every file lvseg writes is written atomically" in err


def test_ctrl_c_during_start_up_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import lvseg.train

    def interrupted(config):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(lvseg.train, "prepare_data", interrupted)
    assert _main_without_escape(["train", "--method", "unet", *TINY_ARGS,
                                 "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("lvseg: interrupted at once")


def test_predict_refuses_a_bool_array_and_slice_for_a_2d_file(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask, image = tmp_path / "mask.npy", tmp_path / "image.npy"
    np.save(mask, _disc() > 0)
    np.save(image, _disc())
    out = tmp_path / "pred"
    assert main(["predict", str(runs["unet"]), str(mask), "--center", "60,50",
                 "--out", str(out)]) == 2
    assert (f"{mask} holds an array of dtype bool; lvseg needs the image's intensities") in (
        _one_error_line(capsys))
    assert main(["predict", str(runs["unet"]), str(image), "--center", "60,50", "--slice", "3",
                 "--out", str(out)]) == 2
    assert (f"--slice picks a slice of a 3-D NIfTI volume; {image} is not one") in (
        _one_error_line(capsys))
    assert not out.exists()


def test_evaluate_checks_max_figures_and_json_before_evaluating(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["evaluate", str(runs["unet"]), "--max-figures", "-3"]) == 2
    assert "max_figures must be an integer >= 0; got -3" in _one_error_line(capsys)
    import lvseg.evaluate

    def never(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("evaluated before checking --json")

    monkeypatch.setattr(lvseg.evaluate, "evaluate_run", never)
    assert main(["evaluate", str(runs["unet"]), "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path} is a folder; give the name of a file to write" in (
        _one_error_line(capsys))
