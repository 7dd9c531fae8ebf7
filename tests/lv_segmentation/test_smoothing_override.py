"""``--smoothing W``: the width of the moving average on the DP's indices, for prediction.

``lvseg evaluate`` (both protocols) and ``lvseg predict`` replace the run's
``StarConfig.smoothing`` through :func:`lvseg.runs.load_run`, as ``--n-lines`` and
``--edge-offset``. References: the plugin's functions called directly on the warped map the DP
solved (``StarDP`` without smoothing for the chosen indices, ``smooth_indices``,
``contour_points``, ``star_mask``), and ``default_smoothing_width``'s documented values.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from diffbypass_stardp import StarDP, contour_points, smooth_indices, star_mask
from lvseg.cli import build_parser, main
from lvseg.inference_options import StarOverrides
from lvseg.runs import load_run
from lvseg.segment import segment
from lvseg.star import StarConfig
from lvseg_testing import one_error_line

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGES = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(0))
CENTRES = torch.tensor([[23.5, 23.5], [20.0, 26.0], [25.25, 22.0]])


@pytest.mark.parametrize(("smoothing", "n_lines", "width"), [
    (None, 12, 3), (None, 25, 7), (None, 50, 13), (0, 25, 1), (1, 25, 1), (5, 25, 5), (5, 50, 5),
])  # fmt: skip
def test_smoothing_width_is_the_width_the_dp_uses(smoothing, n_lines, width):
    assert StarConfig(n_lines=n_lines, smoothing=smoothing).smoothing_width == width


@pytest.mark.parametrize("width", [1, 3, 5])
def test_the_override_reaches_the_dp(run: Path, width: int) -> None:
    """The masks of a run loaded with ``smoothing=W`` are the DP's raw chosen indices, averaged
    over ``W`` lines by the plugin's ``smooth_indices`` (``W = 1``: not at all) and drawn."""
    loaded = load_run(run, overrides=StarOverrides(smoothing=width))
    star = loaded.config.star
    assert star.n_lines == 12 and star.smoothing == width
    seg = segment(loaded.config.method, loaded.unet, IMAGES, CENTRES, star)
    raw = StarDP(delta=star.delta, smoothing=1, output="indices", lam=star.smoothness)(seg.warped)
    want = smooth_indices(raw.to(torch.float64), width).to(seg.indices.dtype)
    assert torch.equal(seg.indices, want)
    contours = contour_points(want, seg.points, offset=star.edge_offset)
    assert torch.equal(seg.masks, star_mask(contours, CENTRES, (48, 48)))
    if width == 1:
        assert torch.equal(seg.indices, raw.to(seg.indices.dtype))


def test_n_lines_alone_keeps_the_runs_smoothing_and_both_apply(run: Path, tmp_path: Path) -> None:
    """The run's ``smoothing=None`` follows ``--n-lines`` (N/4 of the new N); with
    ``--smoothing`` too, both apply; a run with an explicit width keeps it."""
    assert load_run(run).config.star.smoothing is None
    assert load_run(run, overrides=StarOverrides(n_lines=25)).config.star.smoothing_width == 7
    both = load_run(run, overrides=StarOverrides(n_lines=25, smoothing=5)).config.star
    assert (both.n_lines, both.smoothing, both.smoothing_width) == (25, 5, 5)
    fixed = tmp_path / "fixed"  # a run trained with an explicit width of 5
    fixed.mkdir()
    config = json.loads((run / "config.json").read_text())
    config["star"]["smoothing"] = 5
    (fixed / "config.json").write_text(json.dumps(config))
    (fixed / "best.pt").write_bytes((run / "best.pt").read_bytes())
    assert load_run(fixed, overrides=StarOverrides(n_lines=25)).config.star.smoothing_width == 5
    assert load_run(fixed, overrides=StarOverrides(smoothing=1)).config.star.smoothing_width == 1


def test_evaluate_and_predict_take_it_and_the_report_records_the_width(
        run: Path, tmp_path: Path) -> None:  # fmt: skip
    results = {}
    for name, extra in (("default", []), ("w3", ["--smoothing", "3"]), ("w1", ["--smoothing", "1"]),
                        ("n25", ["--n-lines", "25"]),
                        ("n25w5", ["--n-lines", "25", "--smoothing", "5"])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(run), "--split", "all", *extra, "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())
    assert {k: r["smoothing"] for k, r in results.items()} == {
        "default": 3, "w3": 3, "w1": 1, "n25": 7, "n25w5": 5}
    assert results["n25w5"]["n_lines"] == 25
    assert results["default"]["per_image"] == results["w3"]["per_image"]  # 12 lines: N/4 = 3
    assert results["default"]["per_image"] != results["w1"]["per_image"]
    image = tmp_path / "slice.npy"
    np.save(image, np.random.default_rng(0).random((60, 60)).astype(np.float32))
    masks = {}
    for name, extra in (("default", []), ("w3", ["--smoothing", "3"]),
                        ("w1", ["--smoothing", "1"])):
        out = tmp_path / f"pred_{name}"
        assert main(["predict", str(run), str(image), "--center", "30,30", *extra,
                     "--out", str(out)]) == 0  # fmt: skip
        masks[name] = np.load(out / "slice_mask.npy")
    assert np.array_equal(masks["default"], masks["w3"])
    assert not np.array_equal(masks["default"], masks["w1"])


def test_volumes_take_it(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    """``evaluate --protocol volumes`` records the width; ``predict`` of a volume uses it (by
    default 13, the odd integer nearest N/4 of centre-free segmentation's 50 lines)."""
    from lvseg.volumes import write_phantom_patient

    patient = write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=2)
    masks = {}
    for extra, width in (([], 13), (["--smoothing", "1"], 1), (["--smoothing", "5"], 5)):
        out = tmp_path / f"volumes{width}.json"
        assert main(["evaluate", str(tiny_runs["unet-dp"]), "--protocol", "volumes",
                     "--data-dir", str(tmp_path / "acdc"), "--split", "all", *extra, "--json",
                     str(out), "--device", "cpu"]) == 0  # fmt: skip
        assert json.loads(out.read_text())["smoothing"] == width
        folder = tmp_path / f"pred{width}"
        assert main(["predict", str(tiny_runs["unet-dp"]), str(patient), *extra, "--out",
                     str(folder), "--device", "cpu"]) == 0  # fmt: skip
        masks[width] = np.asarray(nib.load(str(folder / "patient901_lv.nii.gz")).dataobj)
    assert not np.array_equal(masks[1], masks[5])


@pytest.mark.parametrize(("extra", "why"), [
    (["--smoothing", "4"], "smoothing must be None, 0/1 (off) or an odd window width >= 3; got 4"),
    (["--smoothing", "13"], "smoothing must be None or an odd width <= n_lines=12; got 13"),
    (["--smoothing", "-1"], "smoothing must be an integer >= 0; got -1"),
    (["--n-lines", "25", "--smoothing", "27"],
     "smoothing must be None or an odd width <= n_lines=25; got 27"),
])  # fmt: skip
def test_a_bad_width_is_a_usage_error_naming_smoothing(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str],
        why: str) -> None:  # fmt: skip
    given = " ".join(extra)
    image = tmp_path / "slice.npy"
    np.save(image, np.zeros((60, 60), np.float32))
    for argv in (["evaluate", str(run), "--split", "all", *extra],
                 ["predict", str(run), str(image), "--center", "30,30", *extra,
                  "--out", str(tmp_path / "o")]):  # fmt: skip
        capsys.readouterr()
        assert main(argv) == 2
        assert one_error_line(capsys) == (
            f"lvseg: error: {given} does not fit the star of {run}: {why}")
    with pytest.raises(ValueError, match="does not fit the star of"):
        load_run(run, overrides=StarOverrides(smoothing=int(extra[-1]),
                                              n_lines=25 if "--n-lines" in extra else None))


def test_help_documents_it_and_train_keeps_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("evaluate", "predict"):
        with pytest.raises(SystemExit):
            build_parser([command]).parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--smoothing W the odd width of the moving average on the DP's indices for " \
               "prediction (default: the run's" in text, command
        assert "1 (or 0): none (docs/volumes.md" in text, command
    args = build_parser().parse_args(["train", "--method", "edpcnn", "--smoothing", "5",
                                      "--out", "x"])  # fmt: skip
    assert args.smoothing == 5  # StarConfig's option, the run's setting
