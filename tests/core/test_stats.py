"""FitStats.agreement: accuracy for indices, per-output R² for reals."""

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
