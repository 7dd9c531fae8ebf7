"""The external-program example (examples/external_program) trains, locally and on Dask.

A tiny setting: a few steps, a short solver run. For a fixed seed the losses do not depend on
where the program runs (the noise is drawn before dispatch), so the Dask run must repeat the
local run's losses exactly.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "external_program"
TINY = ["--steps", "4", "--batch", "4", "--samples", "4", "--max-batch", "8", "--iterations", "200"]


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLE))  # `from program import ...`, as when run as a script
    spec = importlib.util.spec_from_file_location("external_program_train", EXAMPLE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(EXAMPLE))


@pytest.fixture(scope="module")
def local_losses(example):
    return example.main(TINY)


def test_the_program_is_the_same_in_c_and_in_python(example):
    program = sys.modules["program"]
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    outputs = [program.ExternalProgram(program.build(prefer), 300)(x) for prefer in ("c", "python")]
    assert outputs[0].shape == (5, 3)
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert np.all(outputs[0] * 16 == np.round(outputs[0] * 16))  # quantised: no useful gradient


def test_a_failing_program_says_why(example):
    program = sys.modules["program"].ExternalProgram(["false"])
    with pytest.raises(RuntimeError, match="exited with 1"):
        program(torch.zeros(1, 2))


def test_trains_locally(local_losses, capsys):
    assert len(local_losses) == 4 and all(map(math.isfinite, local_losses))


@pytest.mark.parametrize("executor", ["threads", "dask"])
def test_the_executor_changes_nothing_but_where_it_runs(example, local_losses, executor):
    if executor == "dask":
        pytest.importorskip("distributed")
    losses = example.main([*TINY, "--executor", executor, "--workers", "1"])
    assert losses == local_losses


@pytest.mark.parametrize(
    "option,value,shown",
    [("--iterations", "-5", "-5"), ("--workers", "0", "0"), ("--max-batch", "0", "0"),
     ("--steps", "x", "'x'")],
)  # fmt: skip
def test_bad_counts_are_refused_by_the_parser(example, capsys, option, value, shown):
    with pytest.raises(SystemExit) as info:
        example.main([option, value])
    assert info.value.code == 2
    assert f"argument {option}: must be an integer >= 1; got {shown}" in capsys.readouterr().err


def test_a_run_leaves_no_relax_folder_in_tmpdir(tmp_path):
    """Each run compiled relax into a new relax_* folder and left it there."""
    import os
    import subprocess

    script = (
        f"import sys; sys.path.insert(0, {str(EXAMPLE)!r}); import program; "
        "cmd = program.build(); print(cmd[0])"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    if not out.stdout.strip().startswith(str(tmp_path)):
        pytest.skip("no C compiler: build() falls back to relax.py and makes no folder")
    assert list(tmp_path.glob("relax_*")) == []


@pytest.fixture(scope="module")
def calibrate(example):
    spec = importlib.util.spec_from_file_location("external_program_calibrate", EXAMPLE / "calibrate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_program_takes_its_parameters(example):
    program = sys.modules["program"]
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    run = program.ExternalProgram(program.build(), 30, levels=256)
    default, same = run(x), run(x, torch.tensor([0.3, 0.0]))
    np.testing.assert_array_equal(default, same)  # the defaults are (coupling 0.3, diffusion 0)
    assert not np.array_equal(same, run(x, torch.tensor([0.6, 0.25])))
    python = program.ExternalProgram(program.build("python"), 30, levels=256)
    np.testing.assert_array_equal(run(x, [0.6, 0.25]), python(x, [0.6, 0.25]))


@pytest.mark.parametrize("estimator", ["es", "fd"])
def test_calibration_moves_the_parameters_towards_the_truth(calibrate, estimator):
    (record,) = calibrate.main(["--estimator", estimator, "--steps", "25", "--batch", "16", "--lr", "0.05"])
    start = np.abs(np.array(calibrate.START) - np.array(calibrate.TRUE))
    end = np.abs(np.array([record["coupling"], record["diffusion"]]) - np.array(calibrate.TRUE))
    assert end[0] < 0.7 * start[0]  # the coupling moved a good part of the way
    assert record["program_runs"] == 25 * (9 if estimator == "es" else 6)
