"""FitStats.agreement: accuracy for indices, per-output R² for reals."""

import pytest
import torch

from diffbypass.stats import agreement


def test_r2_centres_each_output_on_its_own_mean():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(200, 5, generator=g) + 10 * torch.arange(5.0)
    offsets_only = torch.zeros(200, 5) + target.mean(dim=0)
    # a prediction that only knows the per-output means explains nothing
    assert abs(agreement(offsets_only, target, "r2")) < 1e-9
    assert agreement(target, target, "r2") == 1.0
    noisy = target + 0.5 * torch.randn(200, 5, generator=g)
    t, p = target.double(), noisy.double()
    expected = 1 - ((p - t) ** 2).sum() / ((t - t.mean(0)) ** 2).sum()
    assert abs(agreement(noisy, target, "r2") - float(expected)) < 1e-9


def test_accuracy_of_argmax():
    logits = torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    target = torch.tensor([1, 0, 0, 0])
    assert agreement(logits, target, "accuracy") == 0.75


def test_hooks_are_called_in_order_and_removed_by_their_handle():
    from torch.utils.hooks import RemovableHandle

    from diffbypass.hooks import Hooks

    hooks, seen = Hooks(), []
    first = hooks.add(lambda owner, record: seen.append(("a", owner, record)))
    hooks.add(lambda owner, record: seen.append(("b", owner, record)))
    hooks("me", 1)
    assert isinstance(first, RemovableHandle) and len(hooks) == 2
    first.remove()
    hooks("me", 2)
    assert seen == [("a", "me", 1), ("b", "me", 1), ("b", "me", 2)]
    with pytest.raises(TypeError, match="hook must be callable as hook\\(owner, record\\); got int"):
        hooks.add(3)


def test_remove_hooks_reaches_inner_estimators():
    from diffbypass import ES, GuidedES, Surrogate
    from diffbypass.hooks import remove_hooks

    guide = Surrogate(torch.nn.Linear(2, 2), sigma=0.5, samples=2)
    est = GuidedES(guide, sigma=0.5, samples=4)
    guide.register_fit_hook(print)
    est.register_sample_hook(print)
    probe = ES(sigma=0.5, samples=2)
    probe.register_fit_hook(print)
    assert remove_hooks(est) is est and len(guide._fit_hooks) == len(est._sample_hooks) == 0
    assert len(probe._fit_hooks) == 1  # another module is left alone
