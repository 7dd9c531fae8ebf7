"""StarDP inside a model: Bypass(StarDP(), Surrogate(StarSurrogate(), fit_loss="ce"))."""

from __future__ import annotations

import pytest
import torch

diffbypass = pytest.importorskip("diffbypass")
if not hasattr(diffbypass, "Bypass") or not hasattr(diffbypass, "Surrogate"):
    pytest.skip("diffbypass.Bypass / Surrogate are not available yet", allow_module_level=True)

from diffbypass_stardp import FIT_LOSS, StarDP, StarSurrogate  # noqa: E402


def warped_discs(batch: int, gen: torch.Generator) -> torch.Tensor:
    """Warped probability maps of discs with random radii, plus noise: (B, 25, 65)."""
    radius = 15 + 30 * torch.rand(batch, 1, 1, generator=gen)
    points = torch.arange(65.0)
    maps = torch.sigmoid(radius - points).expand(batch, 25, 65)
    return maps + 0.1 * torch.randn(batch, 25, 65, generator=gen)


def test_surrogate_learns_the_dp_and_gradients_reach_the_input():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    surrogate = diffbypass.Surrogate(
        StarSurrogate(), sigma=0.1, samples=4, fit_steps=4, fit_loss=FIT_LOSS, lr=3e-3,
        generator=torch.Generator().manual_seed(1),
    )
    layer = diffbypass.Bypass(StarDP(), surrogate).train()
    agreement = []
    for _ in range(10):
        x = warped_discs(4, gen).requires_grad_(True)
        y = layer(x)
        assert y.dtype == torch.int64 and y.shape == (4, 25)
        torch.testing.assert_close(y, StarDP()(x.detach()))  # forward = the exact black box
        agreement.append(layer.stats.agreement_after)
        logits = layer.predict(x)
        assert logits.shape == (4, 25, 65)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 65), y.reshape(-1))
        loss.backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert agreement[0] < 0.1  # an untrained surrogate agrees with the DP by chance only
    assert max(agreement[-3:]) > agreement[0] + 0.25
