"""Invalid arguments: a ValueError/TypeError naming the argument and the value received."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from diffbypass import ES, Bypass, FiniteDifference, StraightThrough, Surrogate

from .test_faults import surrogate


# ---------------------------------------------------------------------------------- arguments
def fn_ok(x):
    return x


INVALID = [
    # (constructor, exception, message naming the argument and the value received)
    (lambda: ES(sigma=0, samples=2), ValueError, r"sigma must be a positive number; got 0"),
    (lambda: ES(sigma=-0.5, samples=2), ValueError, r"sigma must be a positive number; got -0.5"),
    (
        lambda: ES(sigma=float("inf"), samples=2),
        ValueError,
        r"sigma must be a finite positive number; got inf",
    ),
    (lambda: ES(sigma="1", samples=2), ValueError, r"sigma must be a positive number; got '1'"),
    (lambda: ES(sigma=1.0, samples=0), ValueError, r"samples must be an integer >= 1; got 0"),
    (lambda: ES(sigma=1.0, samples=2.0), ValueError, r"samples must be an integer >= 1; got 2.0"),
    (
        lambda: ES(sigma=1.0, samples=3),
        ValueError,
        r"samples must be even when antithetic=True .*; got 3",
    ),
    (
        lambda: ES(sigma=1.0, samples=2, shaping="ranks"),
        ValueError,
        r"shaping must be one of 'centered_ranks'; got 'ranks'",
    ),
    (
        lambda: ES(sigma=1.0, samples=2, generator=0),
        TypeError,
        r"generator must be a torch.Generator; got int",
    ),
    (lambda: surrogate(sigma=0), ValueError, r"sigma must be a positive number; got 0"),
    (lambda: surrogate(samples=0), ValueError, r"samples must be an integer >= 1; got 0"),
    (
        lambda: surrogate(samples=5, antithetic=True),
        ValueError,
        r"samples must be even when antithetic=True .*; got 5",
    ),
    (lambda: surrogate(fit_steps=-1), ValueError, r"fit_steps must be an integer >= 0; got -1"),
    (
        lambda: surrogate(fit_loss="l2"),
        ValueError,
        r"fit_loss must be 'mse', 'ce' or a callable; got 'l2'",
    ),
    (lambda: surrogate(lr=0.0), ValueError, r"lr must be a positive number; got 0.0"),
    (lambda: Surrogate("net"), TypeError, r"model must be a torch.nn.Module; got str"),
    (lambda: Surrogate(nn.ReLU()), ValueError, r"model must have trainable parameters"),
    (lambda: FiniteDifference(eps=0), ValueError, r"eps must be a positive number; got 0"),
    (lambda: FiniteDifference(eps=-1e-3), ValueError, r"eps must be a positive number; got -0.001"),
    (
        lambda: Bypass(fn_ok, StraightThrough(), max_batch=0),
        ValueError,
        r"max_batch must be an integer >= 1; got 0",
    ),
    (
        lambda: Bypass(fn_ok, StraightThrough(), max_batch=True),
        ValueError,
        r"max_batch must be an integer >= 1; got True",
    ),
    (
        lambda: Bypass(fn_ok, StraightThrough(), nonfinite="ignore"),
        ValueError,
        r"nonfinite must be one of 'raise', 'drop'; got 'ignore'",
    ),
    (
        lambda: Bypass(fn_ok, "es"),
        TypeError,
        r"estimator must be a diffbypass Estimator .*; got str",
    ),
    (
        lambda: Bypass(fn_ok, nn.Linear(2, 2)),
        TypeError,
        r"estimator must be a diffbypass Estimator .*; got Linear",
    ),
    (lambda: Bypass(42, StraightThrough()), TypeError, r"fn must be callable; got int"),
    (
        lambda: Bypass(fn_ok, StraightThrough(), executor=object()),
        TypeError,
        r"executor must be a concurrent.futures.Executor .*; got object",
    ),
    (
        lambda: Bypass(fn_ok, StraightThrough())([1.0]),
        TypeError,
        r"x must be a torch.Tensor; got list",
    ),
    (
        lambda: Bypass(fn_ok, StraightThrough())(torch.tensor(1.0)),
        ValueError,
        r"x must have a leading batch dimension; got a 0-d tensor",
    ),
]


@pytest.mark.parametrize(
    "build,exc,match",
    INVALID,
    ids=[m.split(" ")[0] + f"-{i}" for i, (_, _, m) in enumerate(INVALID)],
)
def test_invalid_arguments_name_argument_and_value(build, exc, match):
    with pytest.raises(exc, match=match):
        build()
