"""The ``lvseg`` command: train -> evaluate -> predict, and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lvseg.cli import build_parser, main
from lvseg.config import TrainConfig
from lvseg_testing import TINY_ARGS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_writes_a_complete_run_directory(run: Path) -> None:
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.jsonl", "last.pt", "best.pt", "figures"} <= names
    assert (run / "figures" / "training.png").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "edpcnn" and config["star"]["n_lines"] == 12


def test_evaluate_json_has_the_documented_keys(run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--split", "test", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"dice", "dice_std", "hd_mm", "hd95_mm", "assd_mm", "n", "per_image"} <= result.keys()
    assert result["n"] == len(result["per_image"]) == 8
    assert 0 <= result["dice"] <= 1
    assert {"dice", "hd_mm", "hd95_mm", "assd_mm", "source", "patient_id", "center"} <= result["per_image"][0].keys()
    assert "HD95" in capsys.readouterr().out


def test_evaluate_all_with_jitter_and_figures(run: Path, tmp_path: Path) -> None:
    out, figures = tmp_path / "eval.json", tmp_path / "figs"
    assert main(["evaluate", str(run), "--split", "all", "--center-jitter", "0.3",
                 "--figures", str(figures), "--max-figures", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 24 and result["center_jitter"] == 0.3
    assert len(list(figures.glob("*.png"))) == 2


def test_train_refuses_to_overwrite_an_existing_run(run: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    before = (run / "last.pt").read_bytes()
    code = main(["train", "--method", "edpcnn", "--iterations", "2", *TINY_ARGS, "--out", str(run)])
    assert code == 2
    err = capsys.readouterr().err
    assert "lvseg: error:" in err and "already exists and is not empty; pass --resume" in err
    assert (run / "last.pt").read_bytes() == before


def test_broken_checkpoint_is_a_clear_error(run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((run / "config.json").read_text())
    (broken / "best.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", str(broken)]) == 2
    assert "best.pt is unreadable" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_missing_data_dir_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["train", "--method", "unet", "--data", "sunnybrook", "--data-dir",
                 str(tmp_path / "no-such-dir"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert "no-such-dir does not exist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # nothing created for a run that cannot start


def test_delta_replaces_the_dps_smoothness_for_prediction(run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``--delta`` changes the DP at inference only: evaluate reports it and segments with it
    (a contour that may jump by 2 between lines), predict accepts it, a bad value is named."""
    from lvseg.inference_options import StarOverrides
    from lvseg.runs import load_run
    from lvseg.segment import segment

    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--split", "all", "--delta", "2", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["delta"] == 2
    assert load_run(run).config.star.delta == 1
    assert load_run(run, overrides=StarOverrides(delta=2)).config.star.delta == 2
    # delta 0: a circle, every line at the same index
    loaded = load_run(run, overrides=StarOverrides(delta=0))
    images, centers = torch.randn(2, 1, 48, 48), torch.full((2, 2), 23.5)
    seg = segment(loaded.config.method, loaded.unet, images, centers, loaded.config.star)
    assert torch.all(seg.indices == seg.indices[:, :1])
    image = tmp_path / "slice.npy"
    np.save(image, np.random.default_rng(0).random((60, 60)).astype(np.float32))
    assert main(["predict", str(run), str(image), "--center", "30,30", "--delta", "2",
                 "--out", str(tmp_path / "pred")]) == 0
    assert main(["evaluate", str(run), "--delta", "-1"]) == 2
    assert "delta" in capsys.readouterr().err


def test_n_lines_replaces_the_star_lines_for_prediction(run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``--n-lines`` gives the star more (or fewer) lines at inference only: the contour has N
    points, evaluate reports it, predict accepts it; without it the run's star is used as
    trained; a value the star refuses is named as the option."""
    from lvseg.inference_options import StarOverrides
    from lvseg.runs import load_run
    from lvseg.segment import segment

    assert load_run(run).config.star.n_lines == 12  # trained with 12 lines
    loaded = load_run(run, overrides=StarOverrides(n_lines=31))
    images, centers = torch.randn(2, 1, 48, 48), torch.full((2, 2), 23.5)
    seg = segment(loaded.config.method, loaded.unet, images, centers, loaded.config.star)
    assert seg.indices.shape == (2, 31) and seg.contours.shape == (2, 31, 2)
    default, same, more = (tmp_path / f"{name}.json" for name in ("default", "same", "more"))
    assert main(["evaluate", str(run), "--split", "all", "--json", str(default)]) == 0
    assert main(["evaluate", str(run), "--split", "all", "--n-lines", "12", "--json", str(same)]) == 0
    assert main(["evaluate", str(run), "--split", "all", "--n-lines", "31", "--json", str(more)]) == 0
    default_r, same_r, more_r = (json.loads(f.read_text()) for f in (default, same, more))
    assert default_r["n_lines"] == 12 and more_r["n_lines"] == 31
    assert default_r["per_image"] == same_r["per_image"]  # the thesis protocol as before
    image = tmp_path / "slice.npy"
    np.save(image, np.random.default_rng(0).random((60, 60)).astype(np.float32))
    assert main(["predict", str(run), str(image), "--center", "30,30", "--n-lines", "31",
                 "--out", str(tmp_path / "pred")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--n-lines", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"lvseg: error: --n-lines 2 does not fit the star of {run}: n_lines must be "
                   "an integer >= 3; got 2")
    smooth = tmp_path / "smooth"  # a run whose moving average is wider than 5 lines
    smooth.mkdir()
    config = json.loads((run / "config.json").read_text())
    config["star"]["smoothing"] = 7
    (smooth / "config.json").write_text(json.dumps(config))
    (smooth / "best.pt").write_bytes((run / "best.pt").read_bytes())
    with pytest.raises(ValueError, match="--n-lines 5 does not fit the star of .*smoothing must "
                       "be None or an odd width <= n_lines=5; got 7"):
        load_run(smooth, overrides=StarOverrides(n_lines=5))


def test_the_star_overrides_are_one_object_from_the_options_to_the_run(run: Path) -> None:
    """The commands' star options are :class:`StarOverrides`' fields (one definition):
    ``star_overrides`` carries them to :func:`load_run` and the evaluations, which refuse
    anything else by name."""
    import dataclasses

    from lvseg.evaluate import evaluate_run, evaluate_run_volumes
    from lvseg.inference_options import EvaluateConfig, PredictConfig, RunOptions, StarOverrides
    from lvseg.runs import load_run

    star = ["delta", "n_lines", "edge_offset", "smoothing"]
    assert [f.name for f in dataclasses.fields(StarOverrides)] == star
    assert [f.name for f in dataclasses.fields(RunOptions)] == [*star, "device"]
    config = EvaluateConfig(n_lines=31, smoothing=5, split="all", device="cpu")
    assert config.star_overrides == StarOverrides(n_lines=31, smoothing=5)
    assert type(config.star_overrides) is StarOverrides
    assert PredictConfig(out="o").star_overrides == StarOverrides()
    assert StarOverrides(delta=2, edge_offset=0).given() == {"delta": 2, "edge_offset": 0.0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.star_overrides.n_lines = 12  # type: ignore[misc]
    result = evaluate_run(run, split="all", overrides=config.star_overrides)
    assert (result["n_lines"], result["smoothing"], result["delta"]) == (31, 5, 1)
    for call in (lambda o: load_run(run, overrides=o), lambda o: evaluate_run(run, overrides=o),
                 lambda o: evaluate_run_volumes(run, overrides=o)):
        with pytest.raises(TypeError, match=r"^overrides must be a StarOverrides "
                           r"\(lvseg.inference_options\), e.g. StarOverrides\(n_lines=50\); "
                           r"got dict$"):
            call({"n_lines": 31})


def test_predict_npy_and_centre_outside(run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    image = np.zeros((100, 120), np.float32)
    yy, xx = np.mgrid[:100, :120]
    image[(xx - 60) ** 2 + (yy - 50) ** 2 < 15**2] = 1.0
    path = tmp_path / "slice.npy"
    np.save(path, image)
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(path), "--center", "60,50", "--out", str(out)]) == 0
    mask = np.load(out / "slice_mask.npy")
    assert mask.shape == (100, 120) and mask.dtype == bool and mask[50, 60]
    assert (out / "slice_mask.png").is_file() and (out / "slice_overlay.png").is_file()

    assert main(["predict", str(run), str(path), "--center", "130,20", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--center (130, 20) lies outside the 120x100 image" in err


def test_help_documents_every_training_option(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    fields = [f for f in TrainConfig.__dataclass_fields__ if f not in ("star", "fractions", "method")]
    for name in fields + ["n_lines", "n_points", "radius", "delta", "smoothing", "interpolation"]:
        assert "--" + name.replace("_", "-") in text, name
    assert "--resume" in text and "--out RUN_DIR" in text


def test_help_points_to_the_evidence_for_the_defaults_the_acdc_study_decides(capsys) -> None:  # type: ignore[no-untyped-def]
    """--augment, --unlabelled, --average, --temperature, --iterations (edpcnn's) and edpcnn-es
    name the docs section with the comparison (issue #20), and that section exists."""
    from lvseg.train_choices import EVIDENCE

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert EVIDENCE == "docs/reproducing_thesis.md, 'Ten labels'"
    for start in ("--augment {none,light,standard,elastic,noflip} training", "--unlabelled K semi",
                  "--average D weight averaging", "--temperature TAU temperature",
                  "edpcnn-es: the same with ES", "--iterations K training"):
        help_text = text[text.index(start) + len(start):]
        ends = [help_text.find(x) for x in (" --", "; edpcnn-softdp:") if x in help_text]
        assert EVIDENCE in help_text[: min(ends)], start  # in this option's own help
    page = Path(__file__).resolve().parents[2] / "docs" / "reproducing_thesis.md"
    assert "\n## Ten labels\n" in page.read_text(encoding="utf-8")


def test_help_shows_the_augmentation_default_and_the_thesis_setting(capsys) -> None:  # type: ignore[no-untyped-def]
    """``noflip`` since issue #20's ACDC study and the demo's runs, the thesis' ``none`` in
    brackets."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = "--augment {none,light,standard,elastic,noflip} training"
    help_text = text[text.index(start):]
    help_text = help_text[: help_text.index(" --", len(start))]
    assert help_text.endswith("[none] (default noflip)"), help_text


def test_the_surrogate_defaults_are_the_ones_the_page_the_help_points_to_states(capsys) -> None:  # type: ignore[no-untyped-def]
    """--samples' help names docs/lv_example.md 'Speed'; the page's defaults table states
    EDPCNN's S and fit steps, which must be the code's (3 fit steps since lv_stability)."""
    from lvseg.train_choices import METHOD_DEFAULTS

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--fit-steps were chosen: docs/lv_example.md, 'Speed'" in text
    page = (Path(__file__).resolve().parents[2] / "docs" / "lv_example.md").read_text("utf-8")
    assert "\n### Speed: how much surrogate fitting the bypass needs\n" in page
    samples, steps = METHOD_DEFAULTS["edpcnn"].samples, TrainConfig("edpcnn").fit_steps
    assert (samples, steps) == (1, 3)
    assert f"σ = 1, **S = {samples}, {steps} fit steps** (Adam, lr 1e-3)" in page


def test_the_page_states_each_methods_default_iterations() -> None:
    """docs/lv_example.md's defaults table states each method's iterations as the code has them
    (1000 for edpcnn and unet since issue #20's second decision, 500 after its first, 150 and
    200 before)."""
    from lvseg.train_choices import METHOD_DEFAULTS

    page = (Path(__file__).resolve().parents[2] / "docs" / "lv_example.md").read_text("utf-8")
    its = {m: METHOD_DEFAULTS[m].iterations for m in ("edpcnn", "unet", "edpcnn-es")}
    assert its == {"edpcnn": 1000, "unet": 1000, "edpcnn-es": 300}
    row = ", ".join(f"`{m}` {k}" for m, k in its.items())
    assert f"\n| iterations | 20000 | {row} | " in page


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_evaluate_and_predict_options_come_from_their_configs(command: str) -> None:
    """Every option of the two commands is a config field (one definition, one meaning)."""
    import dataclasses

    from lvseg.inference_options import EvaluateConfig, PredictConfig

    config = {"evaluate": EvaluateConfig, "predict": PredictConfig}[command]
    parser = build_parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    options = {a.dest for a in parser._actions if a.option_strings and a.help != "==SUPPRESS=="}
    assert options - {"help"} == {f.name for f in dataclasses.fields(config)}
    for action in parser._actions:
        field = config.__dataclass_fields__.get(action.dest)
        if field is not None:
            assert action.help.startswith(field.metadata["help"]), action.dest


def test_evaluate_seed_is_jitter_seed_and_the_old_spelling_says_so(capsys) -> None:  # type: ignore[no-untyped-def]
    args = build_parser().parse_args(["evaluate", "RUN", "--jitter-seed", "7"])
    assert args.jitter_seed == 7
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "RUN", "--seed", "7"])
    err = capsys.readouterr().err
    assert "--seed is now --jitter-seed here (train's --seed seeds the training): use " \
        "--jitter-seed 7" in err


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "lvseg.cli", "--help"], capture_output=True,
                            text=True, check=True)
    assert "train" in result.stdout and "evaluate" in result.stdout and "predict" in result.stdout


def test_resume_from_the_command_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    base = ["train", "--method", "unet", *TINY_ARGS, "--out", str(out)]
    assert main([*base, "--iterations", "2"]) == 0
    assert main([*base, "--iterations", "4", "--resume"]) == 0
    assert json.loads((out / "config.json").read_text())["iterations"] == 4
    assert main([*base, "--iterations", "6", "--resume", "--lr", "0.5"]) == 2
    assert "only --iterations may change" in capsys.readouterr().err


def test_importing_the_command_starts_neither_torch_nor_matplotlib() -> None:
    """``lvseg.cli.main`` sets OMP_WAIT_POLICY, read when torch starts: it must come first."""
    code = ("import sys, lvseg, lvseg.cli; "
            "print(sorted(m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules)); "
            "print(lvseg.models.__name__, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split("\n")[:2] == ["[]", "lvseg.models True"]  # lazy, then loaded


_RUN_IN_A_FRESH_INTERPRETER = (
    "import contextlib, io, sys\n"
    "from lvseg.cli import main\n"
    "def run(argv):\n"
    "    out, err = io.StringIO(), io.StringIO()\n"
    "    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
    "        try:\n"
    "            main(argv)\n"
    "        except SystemExit as done:\n"
    "            code = done.code\n"
    "    print(argv, code, 'usage: lvseg' in out.getvalue() + err.getvalue())\n"
)


def test_help_and_usage_errors_do_not_import_what_only_the_commands_use() -> None:
    """``lvseg --help`` and a wrong command list the commands: they start no torch.
    ``lvseg <command> --help`` and a bad option are answered by the parser alone: they must not
    import scipy.ndimage (resampling, blobs, surface distances) nor matplotlib (figures), which
    only running a command needs. Checked in a fresh interpreter, the top level first. (Failed
    when the parser was built with every command's options, and when lvseg.data, lvseg.surface
    and lvseg.locate imported scipy.ndimage at the top.)"""
    code = _RUN_IN_A_FRESH_INTERPRETER + (
        "for argv in (['--help'], ['bogus'], []):\n"
        "    run(argv)\n"
        "print('torch' in sys.modules)\n"
        "for argv in (['train', '--help'], ['evaluate', '--help'], ['predict', '--help'],\n"
        "             ['predict', '--bogus']):\n"
        "    run(argv)\n"
        "print(sorted(m for m in ('scipy.ndimage', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['--help'] 0 True", "['bogus'] 2 True", "[] 2 True", "False",
        "['train', '--help'] 0 True", "['evaluate', '--help'] 0 True",
        "['predict', '--help'] 0 True", "['predict', '--bogus'] 2 True", "[]"]


@pytest.mark.parametrize("command, bad", [("train", ["--iterations", "x"]),
                                          ("evaluate", ["--protocol", "nope", "RUN"]),
                                          ("predict", ["--bogus"])])
def test_a_command_help_and_its_usage_errors_start_neither_torch_nor_numba(
        command: str, bad: list[str]) -> None:
    """``lvseg <command> --help`` and a bad option or value of it are answered by the parser,
    generated from option dataclasses that import no torch (:mod:`lvseg.train_choices`,
    :mod:`lvseg.inference_options`, a lazy ``diffbypass``): a fresh interpreter per command,
    since one command's imports would hide another's. (Failed while the configs lived beside
    torch code and ``import diffbypass.validation`` imported every estimator: about 2 s each.)"""
    code = _RUN_IN_A_FRESH_INTERPRETER + (
        f"run([{command!r}, '--help'])\n"
        f"run({[command, *bad]!r})\n"
        "print(sorted(m for m in ('torch', 'numba', 'scipy', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"[{command!r}, '--help'] 0 True", f"{[command, *bad]!r} 2 True", "[]"]


def test_build_parser_of_one_command_and_an_unknown_one() -> None:
    choices = build_parser(["predict"])._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert sorted(choices) == ["evaluate", "predict", "train"]  # every command is listed
    assert [len(choices[c]._actions) for c in ("train", "evaluate")] == [1, 1]  # only -h
    assert len(choices["predict"]._actions) > 10
    with pytest.raises(ValueError, match=r"commands must be among train, evaluate, predict; "
                                         r"got \['trian'\]"):
        build_parser(["trian"])
