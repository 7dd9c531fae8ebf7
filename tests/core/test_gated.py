"""Trust gating: a faithful surrogate is trusted, an adversarial one falls back to ES."""

from __future__ import annotations

import pytest
import torch

from diffbypass import ES, Bypass, Gated, GateStats, Surrogate

N = 12
A = torch.randn(N, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def linear(x):
    return x @ A.T


def fixed_surrogate(weight, seed=0):
    """A Surrogate whose model is the linear map ``weight`` and that never refits."""
    net = torch.nn.Linear(N, N, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(weight)
    g = torch.Generator().manual_seed(seed)
    return Surrogate(net, sigma=0.3, samples=2, fit_steps=0, generator=g)


def run(gate, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    layer, out = Bypass(linear, gate), []
    for _ in range(steps):
        x = torch.randn(2, N, dtype=torch.float64, generator=g, requires_grad=True)
        v = torch.randn(2, N, dtype=torch.float64, generator=g)
        layer(x).backward(v)
        out.append((x.grad, v @ A, gate.gate_stats))
    return layer, out


def probe(seed=2):
    return ES(sigma=0.3, samples=8, generator=torch.Generator().manual_seed(seed))


def test_faithful_surrogate_is_trusted_and_its_gradient_returned():
    gate = Gated(fixed_surrogate(A), probe=ES(sigma=0.3, samples=32,
                 generator=torch.Generator().manual_seed(2)), every=3, threshold=0.5)  # fmt: skip
    _, out = run(gate, 9)
    assert gate.fidelity > 0.8
    for grad, true, stats in out:
        assert stats.trusted and torch.allclose(grad, true)
    assert out[-1][2].probes == 3 and out[-1][2].fallbacks == 0


def test_adversarial_surrogate_falls_back_to_es():
    gate = Gated(fixed_surrogate(-A), probe=probe(), every=2, threshold=0.5)
    _, out = run(gate, 6)
    assert gate.fidelity < 0
    for grad, true, stats in out:
        assert not stats.trusted
        assert float(torch.nn.functional.cosine_similarity(grad.flatten(), true.flatten(), 0)) > 0
    assert out[-1][2].fallbacks == 6


def test_noise_corrected_fidelity_is_close_to_one_for_a_perfect_surrogate_with_a_noisy_probe():
    # a 2-sample probe alone has cosine ~0.3 to the truth at n = 12; the correction removes that
    gate = Gated(fixed_surrogate(A), probe=ES(sigma=0.3, samples=2,
                 generator=torch.Generator().manual_seed(3)), every=1, decay=0.9)  # fmt: skip
    run(gate, 200)
    assert 0.7 < gate.fidelity < 1.3


def test_probe_schedule_and_fn_calls():
    gate = Gated(fixed_surrogate(A), probe=probe(), every=4)
    layer, out = run(gate, 8)
    assert [s.probes for *_, s in out] == [1, 1, 1, 1, 2, 2, 2, 2]
    # forward: 1 call per step; probes: 2 ES calls each; no other backward calls when trusted
    assert layer.blackbox.calls == 8 + 2 * 2


def test_agreement_gate_hook_and_stats():
    seen = []
    sur = Surrogate(torch.nn.Linear(N, N).double(), sigma=0.3, samples=4, fit_steps=1,
                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    gate = Gated(sur, probe=probe(), every=1, threshold=-1.0, min_agreement=0.99)
    handle = gate.register_gate_hook(lambda g, s: seen.append(s))
    run(gate, 2)
    handle.remove()
    run(gate, 1)
    assert len(seen) == 2 and all(isinstance(s, GateStats) for s in seen)
    assert not seen[0].trusted  # an untrained surrogate's held-out R^2 is far below 0.99
    assert set(seen[0].as_dict()) >= {"fidelity", "agreement", "trusted", "probes"}


def test_errors():
    with pytest.raises(TypeError, match="surrogate must have a differentiable predict"):
        Gated(ES(sigma=1.0, samples=2))
    with pytest.raises(ValueError, match="every must be"):
        Gated(fixed_surrogate(A), every=0)
    with pytest.raises(ValueError, match="decay must be < 1"):
        Gated(fixed_surrogate(A), decay=1.0)


@pytest.mark.parametrize("value", [float("nan"), 1.5, "0.5"])
def test_min_agreement_must_be_a_number_up_to_one(value):
    """nan was accepted and silently never trusted the surrogate (every comparison is False)."""
    with pytest.raises(ValueError, match=rf"min_agreement must be a number in \[-inf, 1.0\]; got {value!r}"):
        Gated(fixed_surrogate(A), min_agreement=value)
    assert Gated(fixed_surrogate(A), min_agreement=-0.5).min_agreement == -0.5


def test_hysteresis_keeps_a_good_surrogate_through_noisy_probes_but_not_an_adversarial_one():
    noisy = A + 1.5 * torch.randn(N, N, generator=torch.Generator().manual_seed(4), dtype=A.dtype)
    fallbacks = []
    for h in (0.0, 2.0):
        gate = Gated(fixed_surrogate(noisy), probe=ES(sigma=0.3, samples=2,
                     generator=torch.Generator().manual_seed(5)), every=1, hysteresis=h)  # fmt: skip
        run(gate, 200)
        fallbacks.append(gate.gate_stats.fallbacks)
    assert fallbacks[1] < fallbacks[0] / 2, fallbacks
    gate = Gated(fixed_surrogate(-A), probe=probe(), every=1, hysteresis=2.0)
    _, out = run(gate, 20)
    assert out[0][2].trusted  # trust is withdrawn on evidence, and a first probe is not enough
    assert out[-1][2].fallbacks >= 18 and not out[-1][2].trusted
    with pytest.raises(ValueError, match="hysteresis"):
        Gated(fixed_surrogate(A), hysteresis=-1.0)
