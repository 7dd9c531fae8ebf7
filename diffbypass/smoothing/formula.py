r"""The formula of the smoothed estimate: sample weights, their combination with the directions.

The estimate, its two stages (:func:`sample_weights` once per evaluation of ``fn``,
:func:`combine` per argument) and the smoothed forward (:func:`smoothed_mean`) are written out in
:mod:`diffbypass.smoothing`, which exports these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from diffbypass.base import BlackBoxError, Evaluator, require_real
from diffbypass.stats import ESStats

__all__ = [
    "Weights", "centered_ranks", "combine", "masked_mean", "sample_weights",
    "smoothed_mean", "smoothed_vjp",
]  # fmt: skip

#: The weight shapings :func:`sample_weights` knows (besides ``None``).
SHAPINGS = ("centered_ranks",)


def centered_ranks(values: Tensor, valid: Tensor | None = None) -> Tensor:
    """Replace ``values`` (S, B) by their ranks along S, scaled to [-0.5, 0.5] per column."""
    s = values.shape[0]
    if valid is not None:  # invalid samples rank last and are masked out by the caller
        values = values.masked_fill(~valid, float("inf"))
    ranks = values.argsort(dim=0).argsort(dim=0).to(values.dtype)
    count = s if valid is None else valid.sum(dim=0).clamp(min=1)
    denom = torch.as_tensor(count, dtype=values.dtype, device=values.device) - 1
    return ranks / denom.clamp(min=1) - 0.5


@dataclass(frozen=True)
class Weights:
    """The per-sample weights of one estimate and what they used.

    Attributes:
        values: ``(S, B)`` weights (0 where a sample was dropped).
        groups: the sizes of the consecutive sample groups averaged separately.
        counts: per group, the samples used per batch item (an ``int`` when none was dropped,
            else a ``(B,)`` tensor).
        stats: the :class:`~diffbypass.ESStats` of the estimate.

    Raises:
        ValueError: if ``groups`` are not positive sample counts summing to ``S``, or
            ``counts`` does not hold one entry per group.
    """

    values: Tensor
    groups: tuple[int, ...]
    counts: tuple[Tensor | int, ...]
    stats: ESStats

    def __post_init__(self) -> None:
        _check_groups(self.groups, self.values.shape[0])
        if len(self.counts) != len(self.groups):
            raise ValueError(f"counts must hold one count per group ({len(self.groups)}); got "
                             f"{len(self.counts)}")


def _check_groups(groups: Sequence[int], s: int) -> tuple[int, ...]:
    """``groups`` as a tuple of positive sample counts summing to ``s``."""
    groups = tuple(groups)
    if not groups or sum(groups) != s or min(groups) < 1:
        raise ValueError(f"groups must be positive sample counts summing to S = {s}; got {groups}")
    return groups


def sample_weights(
    ys: Tensor,
    valid: Tensor | None,
    y: Tensor,
    grad_y: Tensor,
    *,
    groups: Sequence[int],
    baseline: bool = True,
    shaping: str | None = None,
    what: str = "ES samples",
) -> Weights:
    """The weights :math:`\\langle v, f(x + \\sigma\\varepsilon_s)\\rangle - b` of the outputs
    ``ys`` ``(S, B, ...)``; ``valid`` marks the usable samples ``(S, B)`` (``None``: all).

    Raises:
        BlackBoxError: a batch item has no usable sample left in some group.
    """
    s, b = ys.shape[0], ys.shape[1]
    groups = _check_groups(groups, s)
    values = (ys * grad_y.unsqueeze(0)).reshape(s, b, -1).sum(dim=2)  # (S, B)
    if baseline:
        values = values - (y * grad_y).reshape(b, -1).sum(dim=1)
    used = values.flatten() if valid is None else values[valid]
    spread = float(used.double().std()) if used.numel() > 1 else 0.0
    stats = ESStats(samples=used.numel(), dropped=values.numel() - used.numel(), value_std=spread)
    if shaping == "centered_ranks":
        values = centered_ranks(values, valid)
    if valid is None:
        return Weights(values, groups, groups, stats)
    counts = []
    for size, part in zip(groups, valid.split(list(groups))):
        empty = (~part.any(dim=0)).nonzero().flatten().tolist()
        if empty:
            raise BlackBoxError(
                f"every perturbed sample of {what} was NaN/inf for batch item(s) "
                f"{empty[:10]}{'...' if len(empty) > 10 else ''} ({size} samples each): "
                "no sample left to estimate their gradient from"
            )
        counts.append(part.sum(dim=0).clamp(min=1).to(values.dtype))  # (B,)
    return Weights(values.masked_fill(~valid, 0.0), groups, tuple(counts), stats)


def combine(weights: Weights, score: Tensor, scale: float | Tensor) -> Tensor:
    """:math:`\\frac1\\sigma\\sum_G \\frac1{|G|}\\sum_{s\\in G} w_s u_s` for one argument:
    scores ``score`` ``(S, *x.shape)``, noise scale ``scale`` (a number, or a tensor that is 0
    where a coordinate is not perturbed: its gradient is then 0)."""
    s, b, rest = score.shape[0], score.shape[1], score.dim() - 2
    w = weights.values.to(score.dtype).reshape(s, b, *([1] * rest))
    inv = None
    if isinstance(scale, Tensor):
        inv = torch.where(scale > 0, 1 / scale.clamp(min=torch.finfo(scale.dtype).tiny), 0.0)
    terms, start = [], 0
    for size, count in zip(weights.groups, weights.counts):
        part = slice(None) if len(weights.groups) == 1 else slice(start, start + size)
        start += size
        if isinstance(count, Tensor):
            count = count.reshape(b, *([1] * rest))
        summed = (w[part] * score[part]).sum(dim=0)
        terms.append(summed * inv / count if inv is not None else summed / (scale * count))
    # at least one term: Weights refuses empty groups (Weights.__post_init__)
    return sum(terms[1:], terms[0])


def smoothed_vjp(
    blackbox: Evaluator,
    x: Tensor,
    y: Tensor,
    grad_y: Tensor,
    eps: Tensor,
    scale: float | Tensor,
    *,
    score: Tensor | None = None,
    groups: Sequence[int] | None = None,
    baseline: bool = True,
    shaping: str | None = None,
    what: str = "ES samples",
) -> tuple[Tensor, ESStats]:
    """The smoothed vector-Jacobian product of ``fn`` at ``x`` and its telemetry.

    Args:
        blackbox: evaluates ``fn``; with ``nonfinite="drop"`` NaN/inf samples are left out.
        x, y, grad_y: the input ``(B, ...)``, ``fn(x)`` and the incoming gradient of ``y``.
        eps: the directions ``(S, *x.shape)``; ``fn`` is evaluated at ``x + scale * eps``.
        scale: the noise scale at ``x`` (a number or a tensor broadcastable to ``x``).
        score: the weights' directions ``(S, *x.shape)`` (default ``eps``: Gaussian noise).
        groups: sizes of consecutive sample groups averaged separately (default one group).
        baseline: subtract :math:`\\langle v, y\\rangle` from every weight.
        shaping: ``None`` or ``"centered_ranks"``.
        what: names the evaluation in errors.
    """
    ys, valid = blackbox.many(x.detach().unsqueeze(0) + scale * eps, what=what)
    weights = sample_weights(ys, valid, y, grad_y, groups=groups or (eps.shape[0],),
                             baseline=baseline, shaping=shaping, what=what)  # fmt: skip
    return combine(weights, eps if score is None else score, scale), weights.stats


def masked_mean(ys: Tensor, valid: Tensor | None, what: str) -> Tensor:
    """The mean of ``ys`` ``(S, B, ...)`` over the usable samples ``valid`` ``(S, B)``."""
    if valid is None:
        return ys.mean(dim=0)
    empty = (~valid.any(dim=0)).nonzero().flatten().tolist()
    if empty:
        raise BlackBoxError(f"every perturbed sample of {what} was NaN/inf for batch item(s) "
                            f"{empty[:10]}: no sample left to average")  # fmt: skip
    mask = valid.reshape(*valid.shape, *([1] * (ys.dim() - 2)))
    return torch.where(mask, ys, 0.0).sum(dim=0) / mask.sum(dim=0)


def smoothed_mean(
    blackbox: Evaluator, x: Tensor, eps: Tensor, scale: float | Tensor, estimator: str
) -> Tensor:
    """The Monte-Carlo :math:`E f(x + \\sigma\\varepsilon)` over the usable samples."""
    ys, valid = blackbox.many(x.detach().unsqueeze(0) + scale * eps, what=f"{estimator} forward")
    return masked_mean(require_real(ys, estimator), valid, f"{estimator} forward")
