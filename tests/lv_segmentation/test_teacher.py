"""Semi-supervised training (``--unlabelled``, lvseg.teacher): the EMA against its closed form,
exact resume, the unlabelled images' labels never read, ``--unlabelled 0`` unchanged, the
teacher's pseudo-labels, and the options' messages."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from diffbypass_stardp import mask_to_indices
from lvseg.averaging import ema_update
from lvseg.checkpoint import load_checkpoint
from lvseg.cli import main
from lvseg.config import TrainConfig
from lvseg.prepare import PreparedSplits, prepare_data
from lvseg.star import StarConfig
from lvseg.teacher import Unlabelled, rampup
from lvseg.train import Trainer
from lvseg_testing import TINY_ARGS, same, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def semi_data() -> PreparedSplits:
    """The tiny data with 4 labelled training slices and 4 unlabelled ones."""
    return prepare_data(tiny_config(train_size=4))


def _steps(config: TrainConfig, run: Path, data: PreparedSplits) -> list[float]:
    trainer = Trainer(config, run, data=data)
    events: list[dict[str, Any]] = []
    trainer.add_hook(lambda t, e: events.append(e))
    trainer.fit()
    return [e["loss"] for e in events if e["event"] == "step"]


def test_ema_update_matches_its_closed_form() -> None:
    """k updates towards a fixed student: theta_t = d^k theta_0 + (1 - d^k) theta_s; buffers
    copied."""
    torch.manual_seed(0)
    teacher, student = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    for p in (*teacher.parameters(), *student.parameters()):
        nn.init.normal_(p)
    student.running_mean.normal_()
    start = [p.detach().clone() for p in teacher.parameters()]
    d, k = 0.9, 5
    for _ in range(k):
        ema_update(teacher, student, d)
    for t0, t, s in zip(start, teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t, d**k * t0 + (1 - d**k) * s)
    assert torch.equal(teacher.running_mean, student.running_mean)


def test_rampup() -> None:
    assert rampup(0, 10) == pytest.approx(np.exp(-5)) and rampup(5, 10) == pytest.approx(
        np.exp(-1.25))
    assert rampup(10, 10) == rampup(99, 10) == rampup(0, 0) == 1.0


@pytest.mark.parametrize("method", ["edpcnn", "unet"])
def test_unlabelled_run_resumes_exactly(tmp_path: Path, semi_data: PreparedSplits,
                                        method: str) -> None:  # fmt: skip
    """4 iterations straight == 2, then resumed for 2 more: student, teacher, both samplers."""
    config = lambda n: tiny_config(method, train_size=4, unlabelled=3, iterations=n,  # noqa: E731
                                   unlabelled_rampup=2, teacher_decay=0.5)
    _steps(config(4), tmp_path / "straight", semi_data)
    _steps(config(2), tmp_path / "split", semi_data)
    torch.manual_seed(999)
    Trainer(config(4), tmp_path / "split", data=semi_data, resume=True).fit()
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in ("straight", "split"))
    for key in ("model", "optimizer", "teacher", "numpy_rng", "torch_rng"):
        assert same(a[key], b[key]), key
    # the teacher moved away from the student (an EMA, not a copy)
    prefix = "unet." if method == "edpcnn" else ""
    teacher = a["teacher"]["unet"]
    assert any(not torch.equal(v, a["model"][prefix + k]) for k, v in teacher.items()
               if v.is_floating_point())


@pytest.mark.parametrize("method", ["edpcnn", "unet"])
def test_unlabelled_labels_are_never_read(tmp_path: Path, semi_data: PreparedSplits,
                                          method: str) -> None:  # fmt: skip
    """Garbage masks and NaN radii on the unlabelled slices change nothing (their given centres
    are inputs and stay)."""
    rng = np.random.default_rng(0)
    data = semi_data.data
    masks, radii = data.masks.copy(), data.radii.copy()
    pool = semi_data.unlabelled
    masks[pool] = rng.random(masks[pool].shape) < 0.5
    radii[pool] = np.nan
    garbage = dataclasses.replace(semi_data, data=dataclasses.replace(data, masks=masks,
                                                                      radii=radii))
    config = tiny_config(method, train_size=4, unlabelled=4, iterations=2, unlabelled_rampup=0)
    clean = _steps(config, tmp_path / "clean", semi_data)
    dirty = _steps(config, tmp_path / "dirty", garbage)
    assert clean == dirty
    a, b = (load_checkpoint(tmp_path / r / "last.pt") for r in ("clean", "dirty"))
    assert same(a["model"], b["model"]) and same(a["teacher"], b["teacher"])
    assert not set(pool) & set(semi_data.train) and len(pool) == 4


# the losses of this tiny run before --unlabelled existed (commit a7e88bd, 3 iterations), without
# augmentation (--augment none, the default then and so every run compared with them here)
BEFORE = {"edpcnn": [3.177382707595825, 3.1749932765960693, 3.172917366027832],
          "unet": [1.721660852432251, 1.695603847503662, 1.6709349155426025]}


@pytest.mark.parametrize("method", ["edpcnn", "unet"])
def test_unlabelled_zero_is_the_old_training(tmp_path: Path, semi_data: PreparedSplits,
                                             method: str) -> None:  # fmt: skip
    losses = _steps(tiny_config(method, train_size=4, iterations=3, augment="none"),
                    tmp_path / "run", semi_data)  # fmt: skip
    np.testing.assert_allclose(losses, BEFORE[method], rtol=1e-5)
    assert "teacher" not in load_checkpoint(tmp_path / "run" / "last.pt")


def test_unlabelled_term_is_in_the_loss(tmp_path: Path, semi_data: PreparedSplits) -> None:
    """Weight 0: the labelled training exactly (unet); a frozen teacher (decay 1) pulls the
    student back; edpcnn's pseudo-label cross-entropy adds about log(M) at the start."""
    zero = _steps(tiny_config("unet", train_size=4, iterations=3, unlabelled=4,
                              unlabelled_weight=0.0, augment="none"), tmp_path / "zero",
                  semi_data)  # fmt: skip
    np.testing.assert_allclose(zero, BEFORE["unet"], rtol=1e-6)  # (a batch of 8, not 4)
    frozen = _steps(tiny_config("unet", train_size=4, iterations=2, unlabelled=4,
                                unlabelled_weight=100.0, teacher_decay=1.0, unlabelled_rampup=0,
                                augment="none"),
                    tmp_path / "frozen", semi_data)  # fmt: skip
    assert frozen[0] == pytest.approx(BEFORE["unet"][0], rel=1e-6)  # the teacher starts as the student
    assert frozen[1] > BEFORE["unet"][1] + 0.1
    dp = _steps(tiny_config("edpcnn", train_size=4, iterations=1, unlabelled=4,
                            unlabelled_rampup=0), tmp_path / "dp", semi_data)  # fmt: skip
    assert dp[0] == pytest.approx(2 * np.log(24), rel=0.02)  # two untrained cross-entropies


def test_pseudo_labels_of_a_perfect_teacher_are_the_true_indices() -> None:
    """The teacher's DP on a perfect map (mask - 1/2) gives mask_to_indices' indices."""
    star = StarConfig(n_lines=12, n_points=24, radius=20.0, delta=24,
                      smoothing=0)  # no shape constraint, no moving average
    yy, xx = np.mgrid[:48, :48]
    masks = torch.from_numpy(np.stack([(xx - 24) ** 2 / 1.3 + (yy - 22) ** 2 < 12**2,
                                       (xx - 20) ** 2 + (yy - 25) ** 2 / 1.5 < 10**2]))
    centers = torch.tensor([[24.0, 22.0], [21.0, 24.0]])
    points = star.points(centers, torch.tensor([0.1, -0.3]))
    maps = masks.float().unsqueeze(1) - 0.5
    u = Unlabelled(maps, maps, None, None, star, 1.0)
    indices, keep = u.pseudo_labels(points)
    assert torch.equal(indices, mask_to_indices(masks, points)) and bool((keep == 1).all())


def test_the_teachers_mask_is_drawn_as_inference_draws_it() -> None:
    """The teacher's stand-in for a true mask is the end-to-end methods' inference mask
    (``lvseg.segment.segment_maps``) at the star's ``edge_offset``, the edge by default: the
    true indices read back from it are the teacher's own (a contour through the chosen points
    would lose the boundary pixels and read back smaller indices)."""
    from lvseg.segment import segment_maps
    from lvseg.teacher import _dp_masks

    star = StarConfig(n_lines=16, n_points=24, radius=20.0, delta=24, smoothing=0)
    yy, xx = np.mgrid[:48, :48]
    masks = torch.from_numpy(np.stack([(xx - 24) ** 2 / 1.3 + (yy - 22) ** 2 < 12**2,
                                       (xx - 20) ** 2 + (yy - 25) ** 2 / 1.5 < 10**2]))
    centers = torch.tensor([[24.0, 22.0], [21.0, 24.0]])
    maps = masks.float().unsqueeze(1) - 0.5
    for offset in (0.5, 0.0, 1.0):
        at = dataclasses.replace(star, edge_offset=offset)
        assert torch.equal(_dp_masks(maps, centers, at),
                           segment_maps("edpcnn", maps, centers, at).masks)
    points = star.points(centers)
    truth = mask_to_indices(masks, points)
    assert torch.equal(mask_to_indices(_dp_masks(maps, centers, star), points), truth)
    shrunk = mask_to_indices(_dp_masks(maps, centers, dataclasses.replace(star, edge_offset=0.0)),
                             points)
    assert bool((shrunk <= truth).all()) and bool((shrunk < truth).any())


def test_agreement_keeps_the_lines_where_the_teacher_agrees_with_itself() -> None:
    """A line counts where the teacher's DP on the jittered star and its contour at the given
    centre (``masks``) cross it within A points; an empty teacher mask: no line counts."""
    star = StarConfig(n_lines=8, n_points=20, radius=16.0, delta=20, smoothing=0)
    yy, xx = np.mgrid[:40, :40]
    disc = torch.from_numpy((xx - 20) ** 2 + (yy - 20) ** 2 < 9**2)
    maps = (disc.float() - 0.5).expand(2, 1, 40, 40)
    teacher_masks = torch.stack([disc, torch.zeros_like(disc)])
    teacher_masks[0, 20:, 20:] = False  # a quarter off: lines 0-1 (and 2 on the border) differ
    points = star.points(torch.tensor([[21.0, 19.0], [21.0, 19.0]]))
    u = Unlabelled(maps, maps, None, None, star, 1.0, teacher_masks, 0)
    indices, keep = u.pseudo_labels(points)
    other = mask_to_indices(teacher_masks[:1], points[:1])
    assert torch.equal(keep[0], (indices[0] == other[0]).float())
    assert 0 < keep[0].sum() < 8 and keep[1].sum() == 0
    loose = Unlabelled(maps, maps, None, None, star, 1.0, teacher_masks, 20)
    assert torch.equal(loose.pseudo_labels(points)[1][0], torch.ones(8))


def test_agreement_run(tmp_path: Path, semi_data: PreparedSplits) -> None:
    """The filter lowers the unlabelled term: fewer lines count."""
    def config(agreement: int | None, iterations: int = 2) -> TrainConfig:
        return tiny_config("edpcnn", train_size=4, unlabelled=4, iterations=iterations,
                           unlabelled_rampup=0, unlabelled_agreement=agreement)
    everything = _steps(config(None, 1), tmp_path / "all", semi_data)
    filtered = _steps(config(0, 1), tmp_path / "filtered", semi_data)
    assert filtered[0] < everything[0]


@pytest.mark.parametrize(("overrides", "message"), [
    ({"unlabelled": -1}, "unlabelled must be an integer in [0, 1024]; got -1"),
    ({"unlabelled_weight": -0.5}, "unlabelled_weight must be a number >= 0; got -0.5"),
    ({"teacher_decay": 1.5}, "teacher_decay must be a number in [0, 1]; got 1.5"),
    ({"unlabelled_rampup": 2.5}, "unlabelled_rampup must be an integer"),
    ({"unlabelled_agreement": -1}, "unlabelled_agreement must be an integer in [0, 1024] or "
                                   "None; got -1"),
])  # fmt: skip
def test_bad_values_name_the_option(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tiny_config("edpcnn", **overrides)


def test_unlabelled_needs_a_method_and_unlabelled_images(tmp_path: Path,
                                                          tiny_data: PreparedSplits) -> None:
    with pytest.raises(ValueError, match=r"teacher_decay is read only with unlabelled > 0; got "
                       r"unlabelled=0: add --unlabelled K, or drop --teacher-decay"):
        Trainer(tiny_config("edpcnn", teacher_decay=0.5), tmp_path / "off", data=tiny_data)
    with pytest.raises(ValueError, match=r"unlabelled_agreement is for methods trained through "
                       r"the DP; got method 'unet': drop --unlabelled-agreement"):
        Trainer(tiny_config("unet", unlabelled=2, unlabelled_agreement=1), tmp_path / "u",
                data=tiny_data)
    with pytest.raises(ValueError, match=r"unlabelled > 0 needs a method with a semi-supervised "
                       r"loss \(unet, unet-dp, edpcnn\); got method 'edpcnn-es'"):
        Trainer(tiny_config("edpcnn-es", unlabelled=2), tmp_path / "es", data=tiny_data)
    with pytest.raises(ValueError, match=r"unlabelled needs training-split slices outside the "
                       r"labelled subset; got none \(train_size=None takes them all\)"):
        Trainer(tiny_config("edpcnn", unlabelled=2), tmp_path / "all", data=tiny_data)


def test_cli_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--method", "unet", *TINY_ARGS, "--unlabelled", "-2", "--out",
              str(tmp_path / "r")])
    assert ("error: argument --unlabelled: unlabelled must be an integer in [0, 1024]; got -2"
            in capsys.readouterr().err)
    args = [a for a in TINY_ARGS if a != "all"]
    args[args.index("--train-size") + 1: args.index("--train-size") + 1] = ["4"]
    main(["train", "--method", "unet", *args, "--iterations", "1", "--unlabelled", "2",
          "--teacher-decay", "0.9", "--out", str(tmp_path / "run")])
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (stored["unlabelled"], stored["teacher_decay"]) == (2, 0.9)
