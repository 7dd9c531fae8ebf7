"""``StarConfig.edge_offset``: where inference draws the DP contour (``--edge-offset``).

The DP's indices are the last points inside the LV; the contour is drawn ``edge_offset`` point
steps beyond them (0.5 by default, the edge). References: the plugin's composition
``contour_points(indices, points, offset=...)`` + ``star_mask`` (what the old code did at 0),
and the true area of a NumPy disc.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from diffbypass_stardp import EDGE_OFFSET, contour_points, star_mask
from lvseg.cli import main
from lvseg.config import TrainConfig
from lvseg.inference_options import StarOverrides
from lvseg.runs import load_run
from lvseg.segment import segment, segment_maps
from lvseg.star import StarConfig
from lvseg_testing import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

CENTRES = torch.tensor([[30.4, 33.2], [28.0, 31.5]])


def disc_maps() -> tuple[torch.Tensor, np.ndarray]:
    """Perfect end-to-end maps (+1 inside, -1 outside) of two discs, radius 14 and 11 px."""
    yy, xx = np.mgrid[:64, :64].astype(np.float64)
    truth = np.stack([(xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
                      for (cx, cy), r in zip(CENTRES.tolist(), (14.0, 11.0))])  # fmt: skip
    return torch.from_numpy(2.0 * truth - 1.0)[:, None].float(), truth


STARS = {"compiled": StarConfig(n_lines=25, n_points=40, radius=40.0),
         "generic": StarConfig(n_lines=25, n_points=40, radius=40.0, interpolation="bilinear")}


@pytest.mark.parametrize("path", list(STARS))
def test_segment_maps_draws_the_contour_at_the_configured_offset(path):
    maps, truth = disc_maps()
    area = {}
    for offset in (0.0, 0.3, EDGE_OFFSET, 1.0):
        star = dataclasses.replace(STARS[path], edge_offset=offset)
        for method in ("edpcnn", "unet-dp"):
            seg = segment_maps(method, maps * (1 if method == "edpcnn" else 9), CENTRES, star)
            want = contour_points(seg.indices, seg.points, offset=offset)
            assert torch.equal(seg.contours, want), (offset, method)
            assert torch.equal(seg.masks, star_mask(want, CENTRES, (64, 64))), (offset, method)
        area[offset] = seg.masks.numpy().sum(axis=(1, 2)) / truth.sum(axis=(1, 2))
    assert StarConfig().edge_offset == EDGE_OFFSET == 0.5
    assert np.all(area[0.0] < 0.92) and np.all(np.abs(area[EDGE_OFFSET] - 1) < 0.05), area
    assert np.all(area[0.0] < area[0.3]) and np.all(area[0.3] < area[EDGE_OFFSET])


def test_a_config_written_before_the_option_loads_with_the_edge():
    stored = tiny_config().to_dict()
    assert stored["star"].pop("edge_offset") == 0.5
    assert TrainConfig.from_dict(json.loads(json.dumps(stored))).star.edge_offset == 0.5
    stored["star"]["edge_offset"] = 1.5
    with pytest.raises(ValueError, match=r"edge_offset.*1\.5"):
        TrainConfig.from_dict(stored)


def test_edge_offset_zero_reproduces_the_old_masks_and_evaluate_reports_it(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    old = tmp_path / "old"  # the run as lvseg wrote it before the option existed
    old.mkdir()
    config = json.loads((run / "config.json").read_text())
    del config["star"]["edge_offset"]
    (old / "config.json").write_text(json.dumps(config))
    (old / "best.pt").write_bytes((run / "best.pt").read_bytes())
    assert load_run(old).config.star.edge_offset == 0.5
    before = load_run(old, overrides=StarOverrides(edge_offset=0))
    assert before.config.star.edge_offset == 0.0
    images = torch.randn(3, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    centers = torch.tensor([[23.5, 23.5], [20.0, 26.0], [25.25, 22.0]])
    seg = segment(before.config.method, before.unet, images, centers, before.config.star)
    # what segment did before: the contour through the DP's indices, filled
    assert torch.equal(seg.masks, star_mask(contour_points(seg.indices, seg.points), centers,
                                            (48, 48)))  # fmt: skip
    now = load_run(old)
    edge = segment(now.config.method, now.unet, images, centers, now.config.star)
    assert torch.equal(edge.indices, seg.indices)  # the same DP; only the drawing moves out
    assert bool((edge.masks >= seg.masks).all())

    results = {}
    for name, extra in (("default", []), ("zero", ["--edge-offset", "0"])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", str(old), "--split", "all", *extra, "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())
    assert results["default"]["edge_offset"] == 0.5 and results["zero"]["edge_offset"] == 0.0
    assert results["default"]["per_image"] != results["zero"]["per_image"]
    image = tmp_path / "slice.npy"
    np.save(image, np.random.default_rng(0).random((60, 60)).astype(np.float32))
    masks = {}
    for offset in ("0", "1"):
        out = tmp_path / f"pred{offset}"
        assert main(["predict", str(old), str(image), "--center", "30,30", "--edge-offset", offset,
                     "--out", str(out)]) == 0
        masks[offset] = np.load(out / "slice_mask.npy")
    assert masks["1"].sum() > masks["0"].sum() and not (masks["0"] & ~masks["1"]).any()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # refused by the parser, from RunOptions' bounds
        main(["evaluate", str(old), "--edge-offset", "2"])
    assert ("argument --edge-offset: edge_offset must be a number in [0, 1] or None; got 2.0"
            in capsys.readouterr().err)
    with pytest.raises(ValueError, match=r"^edge_offset must be a number in \[0, 1\] or None; "
                       r"got 1\.5$"):  # refused by the same bounds before any run is read
        StarOverrides(edge_offset=1.5)


def test_train_does_not_take_the_override_twice(capsys: pytest.CaptureFixture[str]) -> None:
    """``lvseg train --edge-offset`` is the run's setting (StarConfig), not a second option."""
    from lvseg.cli import build_parser

    args = build_parser().parse_args(["train", "--method", "edpcnn", "--edge-offset", "0",
                                      "--out", "x"])  # fmt: skip
    assert args.edge_offset == 0.0


def test_evaluate_volumes_records_the_edge_offset(tiny_runs: dict[str, Path], tmp_path: Path
                                                  ) -> None:  # fmt: skip
    from lvseg.volumes import write_phantom_patient

    write_phantom_patient(tmp_path / "acdc", "patient901", size=48, n_frames=2)
    for extra, expected in (([], 0.5), (["--edge-offset", "0"], 0.0)):
        out = tmp_path / "volumes.json"
        assert main(["evaluate", str(tiny_runs["unet-dp"]), "--protocol", "volumes",
                     "--data-dir", str(tmp_path / "acdc"), "--split", "all", *extra, "--json",
                     str(out), "--device", "cpu"]) == 0  # fmt: skip
        assert json.loads(out.read_text())["edge_offset"] == expected
