"""The EDPCNN pipeline: shapes, learning signal through the bypass, inference, centre jitter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffbypass import ES, Surrogate
from lvseg.edpcnn import EDPCNN
from lvseg.data import make_phantoms, preprocess
from lvseg.models import UNet
from lvseg.jitter import jitter_centers
from lvseg.methods import build_model, get_method, pixel_loss
from lvseg.star import StarConfig
from lvseg.segment import segment
from lvseg_testing import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

STAR = StarConfig(n_lines=12, n_points=24, radius=24.0)


@pytest.fixture(scope="module")
def tiny() -> dict[str, torch.Tensor]:
    data, _ = preprocess(make_phantoms(8, size=64, seed=3), size=64)
    return data.to_tensors()


def _model(method: str = "edpcnn", seed: int = 0, **options: object) -> EDPCNN:
    """The method's model as the trainer builds it (the method table picks the estimator)."""
    options = {"samples": 4, "fit_steps": 2, "surrogate_lr": 3e-3,
               "star": STAR, **options}
    return build_model(tiny_config(method, seed=seed, **options))


def _loss(model: EDPCNN, method: str, images: torch.Tensor, masks: torch.Tensor,
          centers: torch.Tensor) -> torch.Tensor:
    return get_method(method).loss(model, images, masks, centers, None)


def test_forward_shapes_and_types(tiny: dict[str, torch.Tensor]) -> None:
    model = _model()
    out = model(tiny["images"][:3], tiny["centers"][:3], torch.tensor([0.0, 0.3, -0.3]))
    assert out.output_map.shape == (3, 1, 64, 64)
    assert out.points.shape == (3, 12, 24, 2)
    assert out.warped.shape == (3, 12, 24) and out.warped.requires_grad
    assert out.indices.shape == (3, 12) and out.indices.dtype == torch.int64
    assert model.bypass.stats is not None  # the forward pass fitted the surrogate


def test_edpcnn_loss_decreases_and_gradients_reach_the_unet(tiny: dict[str, torch.Tensor]) -> None:
    """Algorithm 3 on 8 phantoms: the CE on the surrogate's prediction goes down."""
    model = _model()
    optimizer = torch.optim.Adam(model.unet.parameters(), lr=3e-3)
    images, masks, centers = tiny["images"], tiny["masks"], tiny["centers"]
    losses = []
    for step in range(40):
        loss = _loss(model, "edpcnn", images, masks, centers)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            grads = [p.grad for p in model.unet.parameters()]
            assert all(g is not None for g in grads)
            assert sum(float(g.abs().sum()) for g in grads) > 0
            # the surrogate is trained by its own fit only, never by the U-Net's loss
            assert all(p.grad is None for p in model.bypass.estimator.model.parameters())
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_es_variant_gives_float_indices_and_a_gradient(tiny: dict[str, torch.Tensor]) -> None:
    model = _model("edpcnn-es")
    assert isinstance(model.bypass.estimator, ES)
    out = model(tiny["images"][:2], tiny["centers"][:2])
    assert out.indices.dtype == torch.float32
    _loss(model, "edpcnn-es", tiny["images"][:2], tiny["masks"][:2], tiny["centers"][:2]).backward()
    assert model.unet.head.weight.grad.abs().sum() > 0


def test_the_method_table_alone_picks_estimator_dp_output_and_loss() -> None:
    from diffbypass_stardp import StarDP

    surrogate = _model("edpcnn", samples=3, fit_steps=5)
    estimator = surrogate.bypass.estimator
    assert isinstance(estimator, Surrogate) and "fit_loss='ce'" in repr(estimator)
    assert (estimator.sigma, estimator.samples, estimator.fit_steps) == (1.0, 3, 5)
    es = _model("edpcnn-es").bypass.estimator
    assert isinstance(es, ES) and (es.sigma, es.samples) == (0.1, 4)
    # the learning rate is a method default too (ES: benchmarks/acdc_ablation/README.md), and
    # --lr overrides it
    assert [tiny_config(m).lr for m in ("edpcnn", "edpcnn-es")] == [1e-3, 3e-3]
    assert tiny_config("edpcnn-es", lr=1e-4).lr == 1e-4
    for method, output in (("edpcnn", "indices"), ("edpcnn-es", "float")):
        dp = _model(method).bypass.blackbox.fn
        assert isinstance(dp, StarDP) and dp.output == output == get_method(method).dp_output
    assert not isinstance(_model("unet"), EDPCNN)
    with pytest.raises(ValueError, match="dp_output must be one of 'indices', 'float'; got 'int'"):
        EDPCNN(UNet(base_channels=2, depth=1), STAR, es, "int")


def test_surrogate_architectures_come_from_the_table() -> None:
    from diffbypass_stardp import LineSurrogate, StarSurrogate

    line = _model(surrogate="line", surrogate_channels=4).bypass.estimator
    star = _model(surrogate="star").bypass.estimator
    assert isinstance(line.model, LineSurrogate) and line.model.channels == 4
    assert isinstance(star.model, StarSurrogate)
    assert not line.report_after  # the trainer logs agreement_before only
    with pytest.raises(ValueError, match="surrogate must be one of 'star', 'line'; got 'mlp'"):
        _model(surrogate="mlp")


@pytest.mark.parametrize("method", ["unet", "unet-dp", "edpcnn", "edpcnn-es", "edpcnn-softdp"])
def test_segment_every_method(tiny: dict[str, torch.Tensor], method: str) -> None:
    unet = UNet(base_channels=4, depth=2)
    seg = segment(method, unet, tiny["images"][:2], tiny["centers"][:2], STAR)
    assert seg.masks.shape == (2, 64, 64) and seg.masks.dtype == torch.bool
    assert seg.output_map.shape == (2, 64, 64)
    if method == "unet":
        assert seg.contours is None
    else:
        assert seg.contours.shape == (2, 12, 2) and seg.indices.dtype == torch.float32
        assert seg.masks.any(dim=(1, 2)).all()  # a DP contour always encloses something


def test_segment_of_a_perfect_map_recovers_the_object(tiny: dict[str, torch.Tensor]) -> None:
    class Oracle(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return (tiny["masks"][: len(images)].float()[:, None] - 0.5) * 20

    seg = segment("unet-dp", Oracle(), tiny["images"][:4], tiny["centers"][:4], STAR)
    true = tiny["masks"][:4]
    dice = 2 * (seg.masks & true).sum((1, 2)) / (seg.masks.sum((1, 2)) + true.sum((1, 2)))
    assert dice.min() > 0.85, dice


def test_pixel_loss_is_small_for_a_confident_correct_prediction() -> None:
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 2:6, 2:6] = True
    good = (masks.float()[:, None] - 0.5) * 40
    assert pixel_loss(good, masks) < 0.01 < pixel_loss(-good, masks)


def test_jitter_stays_inside_and_follows_the_radius() -> None:
    masks = np.zeros((400, 40, 40), bool)
    masks[:, 10:30, 10:30] = True
    centers = np.full((400, 2), 19.5, np.float32)
    radii = np.full(400, 10.0, np.float32)
    out = jitter_centers(centers, radii, masks, 0.3, np.random.default_rng(0))
    rows, cols = np.floor(out[:, 1] + 0.5).astype(int), np.floor(out[:, 0] + 0.5).astype(int)
    assert masks[np.arange(400), rows, cols].all()
    assert abs(float(np.std(out - centers)) - 3.0) < 0.4  # s.d. 0.3 * radius, barely truncated
    assert np.array_equal(jitter_centers(centers, radii, masks, 0.0, np.random.default_rng(0)),
                          centers)


def test_jitter_moves_a_centre_off_the_object_onto_it() -> None:
    mask = np.zeros((1, 20, 20), bool)
    mask[0, 2:18, 2:5] = True  # a bar; the given centre (10, 10) is outside it
    out = jitter_centers(np.array([[10.0, 10.0]]), np.array([0.0]), mask, 1.0,
                         np.random.default_rng(0))
    assert mask[0, int(out[0, 1] + 0.5), int(out[0, 0] + 0.5)]


def test_star_config_validation() -> None:
    with pytest.raises(ValueError, match="smoothing must be None or an odd width <= n_lines=25; got 27"):
        StarConfig(smoothing=27)
    # the settings StarDP and star_points take are checked by them, with their rules
    with pytest.raises(ValueError, match=r"smoothing must be None, 0/1 \(off\) or an odd window width"):
        StarConfig(smoothing=8)
    with pytest.raises(ValueError, match="n_lines must be an integer >= 3; got 2"):
        StarConfig(n_lines=2, smoothing=1)
    assert StarConfig(delta=0).delta == 0  # StarDP accepts delta = 0 (a circle): so does the config
    with pytest.raises(ValueError, match="delta must be an integer >= 0; got -1"):
        StarConfig(delta=-1)
    with pytest.raises(ValueError, match="interpolation must be one of 'nearest', 'bilinear'; got 'cubic'"):
        StarConfig(interpolation="cubic")
    with pytest.raises(TypeError, match="estimator must be a diffbypass Estimator"):
        EDPCNN(UNet(base_channels=2, depth=1), StarConfig(), torch.nn.Linear(1, 1), "float")  # type: ignore[arg-type]


def test_pooled_star_lowers_what_es_sees_and_keeps_the_contour(tiny: dict[str, torch.Tensor]) -> None:
    star = StarConfig(n_lines=12, n_points=24, radius=24.0, pool=4)
    g = (torch.arange(24) < 10).float().expand(2, 12, 24)  # object up to point 9
    assert star.reduce(g).shape == (2, 12, 6)
    assert torch.equal(star.reduce(g).mean(-1), g.reshape(2, 12, 6, 4).mean(-1).mean(-1))
    # the interpolated step falls between blocks: the contour moves by less than a block
    assert (star.dp()(star.reduce(g)) - 9).abs().max() <= 4
    pooled = star.reduce(g)  # NumPy in, NumPy out, the same numbers (as StarDP)
    assert torch.equal(torch.from_numpy(star.dp()(pooled.numpy())), star.dp()(pooled))
    assert StarConfig(n_points=65, pool=4).reduce(torch.zeros(1, 25, 65)).shape == (1, 25, 17)
    model = _model("edpcnn-es", star=star)
    out = model(tiny["images"][:2], tiny["centers"][:2])
    assert out.warped.shape == (2, 12, 6) and out.indices.shape == (2, 12)
    _loss(model, "edpcnn-es", tiny["images"][:2], tiny["masks"][:2], tiny["centers"][:2]).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.unet.parameters())
    seg = segment("edpcnn-es", model.unet, tiny["images"][:2], tiny["centers"][:2], star)
    assert seg.indices.shape == (2, 12) and seg.warped.shape == (2, 12, 24)
    with pytest.raises(ValueError, match="star.pool > 1 .ES-lo. is for the ES estimator"):
        _model("edpcnn", star=star)
    with pytest.raises(ValueError, match="pool"):
        StarConfig(pool=0)


def test_the_star_surrogate_is_channels_last_and_the_same_function() -> None:
    """lvseg keeps the star surrogate's weights channels-last (a cheaper CPU fit and VJP): the
    same network as the plain StarSurrogate up to rounding, in values and in gradients."""
    from diffbypass_stardp import StarSurrogate
    from lvseg.edpcnn import SURROGATES

    torch.manual_seed(0)
    fast = SURROGATES["star"](8, False)
    plain = StarSurrogate(base_channels=8)
    plain.load_state_dict(fast.state_dict())
    assert all(p.is_contiguous(memory_format=torch.channels_last)
               for p in fast.parameters() if p.dim() == 4)
    x = torch.randn(3, 25, 65)
    outs, grads = [], []
    for net in (fast, plain):
        xx = x.clone().requires_grad_(True)
        out = net(xx)
        out.square().sum().backward()
        outs.append(out.detach()), grads.append(xx.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_output_map_is_reported_with_its_count(tiny: dict[str, torch.Tensor],
                                                             bad: float) -> None:
    """The check of the U-Net's output map (by its extremes) finds one NaN, +inf or -inf value
    anywhere in the map, and a finite map passes."""
    from lvseg.edpcnn import _all_finite

    model = _model()
    images, centers = tiny["images"][:2], tiny["centers"][:2]
    output_map = model.unet(images).detach()
    assert _all_finite(output_map) and _all_finite(output_map[:0])
    for position in ((0, 0, 0, 0), (1, 0, 63, 63), (1, 0, 17, 40)):
        broken = output_map.clone()
        broken[position] = bad
        assert not _all_finite(broken)
    model.unet.register_forward_hook(lambda module, args, out: out.index_put(
        (torch.tensor([1]), torch.tensor([0]), torch.tensor([17]), torch.tensor([40])),
        torch.tensor(bad)))
    with pytest.raises(FloatingPointError, match=r"the U-Net's output map has 1 NaN/inf value\(s\)"):
        model(images, centers)
