"""DDP semantics (diffbypass.distributed): 2 gloo processes on 127.0.0.1 against 1 process.

One spawn runs every scenario of ``_ddp.py`` on 2 ranks; the ranks start from different seeds,
so every agreement below is made by DDP (the model) and the library (surrogates, noise, gates).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from diffbypass import Bypass, FitStats, Gated, NoiseSampler, Surrogate
from diffbypass import distributed
from tests.core import _ddp

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return _ddp.run_ranks(2, str(tmp_path_factory.mktemp("ddp")))


@pytest.fixture(scope="module")
def single() -> dict:
    """The same runs on one process without a process group (the global batch at once)."""
    return {kind: _ddp.train(kind, 0, 1) for kind in _ddp.MAKERS}


@pytest.mark.parametrize("kind", list(_ddp.MAKERS))
def test_state_identical_on_every_rank_noise_not(ranks: list[dict], kind: str) -> None:
    first, second = ranks[0][kind], ranks[1][kind]
    for name, value in first.items():
        if name == "noise":
            assert not torch.allclose(value, second[name]), "the ranks drew the same noise"
        else:  # the model, the surrogate, its Adam moments, the noise generator's state
            assert torch.equal(value, second[name]), f"{kind}: {name} differs between the ranks"


@pytest.mark.parametrize("kind", ["finite_difference", "straight_through"])
def test_two_ranks_match_one_rank_deterministic(ranks: list[dict], single: dict, kind: str) -> None:
    # the same steps on the global batch; only the order of the float sums differs
    for name in ("0.weight", "0.bias"):
        torch.testing.assert_close(ranks[0][kind][name], single[kind][name], rtol=0, atol=1e-6)


def test_two_ranks_match_one_rank_surrogate(ranks: list[dict], single: dict) -> None:
    # the fit step is the step on the union of the ranks' samples, but the ranks draw their own
    # noise, so the fit samples differ from one process's by O(sigma) = 1e-4: the surrogates
    # and the models agree to that order (times the few steps' lr), not to float rounding
    two, one = ranks[0]["surrogate_small_sigma"], single["surrogate_small_sigma"]
    for name in ("0.weight", "0.bias", "1.estimator.model.weight", "1.estimator.model.bias"):
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-4)
    # with a realistic sigma the runs differ (different samples), by far more than rounding
    assert not torch.allclose(ranks[0]["surrogate"]["0.weight"], single["surrogate"]["0.weight"],
                              atol=1e-6)  # fmt: skip


def test_es_gradient_under_ddp_is_the_linear_gradient(ranks: list[dict]) -> None:
    got = [r["es_gradient"]["grad"] for r in ranks]
    assert torch.equal(got[0], got[1])  # DDP's average, on both ranks
    # closed form: fn(z) = z A^T is linear, so d/dW mean_i sum_j (A W x_i)_j = A^T 1 mean(x)^T;
    # 2000 antithetic samples per item and 10 items: a few percent of noise
    a, x = ranks[0]["es_gradient"]["a"], _ddp.data() + 1
    exact = a.T @ torch.ones(3, 1) @ x.mean(0, keepdim=True)
    assert float((got[0] - exact).norm() / exact.norm()) < 0.1


def test_reduce_stats_sums_counts_and_averages_the_rest(ranks: list[dict]) -> None:
    for r in ranks:
        assert r["reduced"] == {"loss_first": 0.5, "loss_last": 1.0, "agreement_before": 1.0,
                                "agreement_after": None, "metric": "r2", "samples": 21,
                                "dropped": 1, "steps": 2, "skipped": 0}  # fmt: skip


def _forbid_collectives(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a collective ran without a process group")

    for name in ("all_reduce", "broadcast", "broadcast_object_list"):
        monkeypatch.setattr(torch.distributed, name, fail)


def test_without_a_process_group_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    _forbid_collectives(monkeypatch)
    sampler = NoiseSampler(0.5, 4, generator=torch.Generator().manual_seed(3))
    expected = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sampler.noise(torch.zeros(2, 3)), expected)
    first = _ddp.train("surrogate", 0, 1)
    assert torch.equal(first["noise"], _ddp.train("surrogate", 0, 1)["noise"])


def test_a_one_process_group_changes_nothing_bit_for_bit() -> None:
    alone = {kind: _ddp.train(kind, 0, 1) for kind in ("surrogate", "es")}
    torch.distributed.init_process_group("gloo", store=torch.distributed.HashStore(), rank=0,
                                         world_size=1)  # fmt: skip
    try:
        grouped = {kind: _ddp.train(kind, 0, 1) for kind in alone}
    finally:
        torch.distributed.destroy_process_group()
    for kind, state in alone.items():
        for name, value in state.items():
            assert torch.equal(value, grouped[kind][name]), f"{kind}: {name}"


def test_prepare_ddp_excludes_every_estimator_state() -> None:
    inner = Surrogate(torch.nn.Linear(2, 2))
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), Bypass(torch.sign, Gated(inner)))
    names = distributed.prepare_ddp(model)
    assert names == ["1.estimator.surrogate.model.weight", "1.estimator.surrogate.model.bias"]
    assert model._ddp_params_and_buffers_to_ignore == names
    with pytest.raises(TypeError, match="model must be a torch.nn.Module; got int"):
        distributed.prepare_ddp(3)  # type: ignore[arg-type]


def test_reduce_stats_without_a_group_and_bad_input() -> None:
    record = FitStats(1.0, 0.5, 0.2, None, "r2", 8, 0, 2)
    assert distributed.reduce_stats(record) is record
    with pytest.raises(TypeError, match="stats must be a telemetry record .a dataclass.; got dict"):
        distributed.reduce_stats({"samples": 1})
    assert dataclasses.is_dataclass(record)
