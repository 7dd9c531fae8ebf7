"""Bad values and files given to ``lvseg`` from the second reliability probe (issue #22): spacings,
sizes, hand-edited configs, non-finite pixels, Ctrl-C, wrong arrays and options.

Hostile run directories and faults are ``test_hostile_runs.py``. Each case ends in one ``lvseg: error: ...`` line (or one refusal) naming the argument or file,
what was expected and what was received, before anything is created; no traceback, no file
outside the run changed. The lvseg table of ``docs/reliability.md`` lists them.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest

from lvseg.cli import main
from lvseg.data import resample
from lvseg.prepare import prepare_data
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, disc, edit_dicom, one_error_line

pytestmark = pytest.mark.usefixtures("one_thread")


def _edit_dicom(folder: Path, **fields: object) -> Path:
    """Set DICOM ``fields`` in the first image of the ``small_sunnybrook`` copy."""
    return edit_dicom(sorted((folder / "dicoms" / "SCD0000101").iterdir())[0], **fields)


# ------------------------------------------------------------- 4, 7. pixel spacing and sizes
@pytest.mark.parametrize("spacing", ["0.01", "1000"])
def test_predict_refuses_an_implausible_spacing(
    tiny_runs: dict[str, Path], tmp_path: Path, spacing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "slice.npy"
    np.save(path, disc())
    out = tmp_path / "pred"
    assert main(["predict", str(tiny_runs["edpcnn"]), str(path), "--center", "60,50",
                 "--spacing", spacing, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(path) in line
    assert (f"spacing must be between 0.1 and 10 mm per pixel (short-axis cardiac MRI: about "
            f"0.5-3 mm); got {float(spacing):g} x {float(spacing):g} mm") in line
    assert not out.exists()


@pytest.mark.parametrize("spacing", [[300.0, 300.0], [0.001, 0.001]])
def test_a_dicom_with_an_implausible_spacing_is_named_before_resampling(
    tiny_runs: dict[str, Path], small_sunnybrook: Path, spacing: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _edit_dicom(small_sunnybrook, PixelSpacing=spacing)
    assert main(["evaluate", str(tiny_runs["unet"]), "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--split", "all"]) == 2
    line = one_error_line(capsys)
    assert f"{path}: spacing must be between 0.1 and 10 mm per pixel" in line
    # predict reads the same file's spacing
    assert main(["predict", str(tiny_runs["unet"]), str(path), "--center", "100,100",
                 "--out", str(small_sunnybrook / "pred")]) == 2
    assert f"got {spacing[0]:g} x {spacing[1]:g} mm" in one_error_line(capsys)


def test_a_nifti_with_zooms_of_500_is_refused(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import nibabel as nib

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(disc()[:, :, None], np.diag([500.0, 500.0, 8.0, 1.0])), path)
    assert main(["predict", str(tiny_runs["unet"]), str(path), "--center", "60,50",
                 "--out", str(tmp_path / "pred")]) == 2
    assert "got 500 x 500 mm" in one_error_line(capsys)


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
     ("lr", "0.1", "lr must be a number or None; got '0.1'"),
     ("train_size", 1.5, "train_size must be an integer >= 1 or None; got 1.5"),
     ("batch_size", True, "batch_size must be an integer in [1, 1024]; got True"),
     ("method", 3, "method must be one of 'unet', 'unet-dp', 'edpcnn', 'edpcnn-es', 'edpcnn-softdp'; got 3")],
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
            one_error_line(capsys))


def test_a_star_radius_of_1e9_in_config_json_is_refused(
    unet_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads((unet_run / "config.json").read_text())
    config["star"]["radius"] = 1e9
    (unet_run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", str(unet_run)]) == 2
    assert "config.json: radius must be a number <= 512; got 1000000000.0" in (
        one_error_line(capsys))


# ------------------------------------------------------------- 13. non-finite pixels
def test_a_dicom_whose_rescale_slope_overflows_is_named_at_load(
    tiny_runs: dict[str, Path], small_sunnybrook: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _edit_dicom(small_sunnybrook, RescaleSlope="1e38")
    expected = f"{path} has "
    assert main(["evaluate", str(tiny_runs["edpcnn"]), "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--split", "all"]) == 2
    line = one_error_line(capsys)  # was: the DP's "cost must be finite", naming no file
    assert expected in line and "pixels that are NaN or infinite" in line
    assert "RescaleSlope/Intercept beyond float32" in line
    out = tmp_path / "run"
    assert main(["train", "--method", "unet", "--data", "sunnybrook", "--data-dir",
                 str(small_sunnybrook), "--train-size", "all", "--iterations", "1",
                 "--no-progress", "--out", str(out)]) == 2
    assert expected in one_error_line(capsys)
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

    monkeypatch.setattr(lvseg.train, "prepare_training", interrupted)
    assert _main_without_escape(["train", "--method", "unet", *TINY_ARGS,
                                 "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("lvseg: interrupted at once")


def test_predict_refuses_a_bool_array_and_slice_for_a_2d_file(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask, image = tmp_path / "mask.npy", tmp_path / "image.npy"
    np.save(mask, disc() > 0)
    np.save(image, disc())
    out = tmp_path / "pred"
    assert main(["predict", str(tiny_runs["unet"]), str(mask), "--center", "60,50",
                 "--out", str(out)]) == 2
    assert (f"{mask} holds an array of dtype bool; lvseg needs the image's intensities") in (
        one_error_line(capsys))
    assert main(["predict", str(tiny_runs["unet"]), str(image), "--center", "60,50", "--slice", "3",
                 "--out", str(out)]) == 2
    assert (f"--slice picks a slice of a 3-D NIfTI volume; {image} is not one") in (
        one_error_line(capsys))
    assert not out.exists()


def test_evaluate_checks_max_figures_and_json_before_evaluating(
    tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):  # the option's bound, checked by the generated parser
        main(["evaluate", str(tiny_runs["unet"]), "--max-figures", "-3"])
    assert "max_figures must be an integer >= 0; got -3" in capsys.readouterr().err
    import lvseg.evaluate

    def never(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("evaluated before checking --json")

    monkeypatch.setattr(lvseg.evaluate, "evaluate_run", never)
    assert main(["evaluate", str(tiny_runs["unet"]), "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path} is a folder; give the name of a file to write" in (
        one_error_line(capsys))
