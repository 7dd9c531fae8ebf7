r"""The Monte-Carlo smoothing core: one formula behind ES, Perturbed and GuidedES.

For the incoming gradient :math:`v` of the output, perturbed inputs
:math:`x + \sigma\varepsilon_s` and their scores :math:`u_s = \nabla\nu(\varepsilon_s)`
(:math:`u_s = \varepsilon_s` for Gaussian noise), :func:`smoothed_vjp` returns

.. math::
    \hat g = \frac{1}{\sigma}\sum_{\text{groups } G} \frac{1}{|G|}\sum_{s \in G}
    \big(\langle v, f(x + \sigma\varepsilon_s)\rangle - b\big)\, u_s,

with the baseline :math:`b = \langle v, f(x)\rangle` (or 0), optional centred-rank shaping of the
weights, and samples where ``fn`` gave NaN/inf (``Bypass(nonfinite="drop")``) left out of
:math:`|G|`. Every failure is a :class:`~diffbypass.BlackBoxError`. One group is plain ES or a
perturbed optimizer; GuidedES's unbiased split averages its two groups separately.

The estimate has two stages, kept apart for black boxes with several inputs: the weights
(:func:`sample_weights`) come from one evaluation of ``fn`` on all perturbed arguments, and the
combination with the directions (:func:`combine`) is done per argument with its own
:math:`\sigma`.

:class:`Smoothing` is the base of the estimators built on it: the sampler, the options and the
telemetry (:class:`~diffbypass.ESStats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from diffbypass.arguments import Call, flatten_outputs
from diffbypass.base import BlackBoxError, Estimator, Evaluator, require_real, require_real_outputs
from diffbypass.noise import Noise
from diffbypass.sampler import NoiseSampler, SamplerMixin, Sigma, SigmaSpec
from diffbypass.stats import ESStats
from diffbypass.validation import one_of

__all__ = [
    "Smoothing", "Weights", "centered_ranks", "combine", "masked_mean", "sample_weights",
    "smoothed_mean", "smoothed_vjp",
]  # fmt: skip

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


class Smoothing(SamplerMixin, Estimator):
    """Base of the Monte-Carlo smoothing estimators: a :class:`~diffbypass.NoiseSampler`, the
    options of :func:`smoothed_vjp`, and the :class:`~diffbypass.ESStats` of every estimate
    passed to :meth:`_report`.

    Args:
        sigma: noise scale (a number, a per-coordinate tensor or :class:`~diffbypass.Relative`).
        samples: :math:`S`, perturbed evaluations per input and backward.
        antithetic: pairs :math:`\\pm\\varepsilon` (``samples`` even; symmetric noise only).
        baseline: subtract :math:`\\langle v, f(x)\\rangle` from every weight.
        shaping: ``None`` or ``"centered_ranks"``.
        generator: CPU ``torch.Generator`` for the noise.
        noise: the noise distribution (default Gaussian).
    """

    #: names the perturbed evaluations in errors
    what = "ES samples"

    def __init__(
        self,
        *,
        sigma: SigmaSpec,
        samples: int,
        antithetic: bool,
        baseline: bool,
        shaping: str | None,
        generator: torch.Generator | None,
        noise: Noise | None = None,
    ) -> None:
        super().__init__()
        self.sampler = NoiseSampler(
            sigma, samples, antithetic=antithetic, generator=generator, noise=noise
        )
        self.baseline = bool(baseline)
        self.shaping = None if shaping is None else one_of("shaping", shaping, SHAPINGS)

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        return require_real(
            blackbox(x, what="forward"), type(self).__name__,
            "Return floats from fn (e.g. indices.float()), or use Surrogate(fit_loss='ce') and "
            "put the loss on Bypass.predict(x)",
        )  # fmt: skip

    def _estimate(
        self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor, eps: Tensor, *,
        score: Tensor | None = None, groups: Sequence[int] | None = None,
    ) -> Tensor:  # fmt: skip
        """:func:`smoothed_vjp` with this estimator's options; reports its telemetry."""
        grad, stats = smoothed_vjp(
            blackbox, x, y, grad_y, eps, self.sampler.scale(x), score=score, groups=groups,
            baseline=self.baseline, shaping=self.shaping, what=self.what,
        )  # fmt: skip
        self._report(stats)
        return grad

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        return require_real_outputs(blackbox.call(call), type(self).__name__)

    def _estimate_call(
        self, blackbox: Any, call: Call, ys: tuple[Tensor, ...], grad_ys: tuple[Tensor | None, ...],
        eps: list[Tensor], scores: list[Tensor] | None = None,
        groups: Sequence[int] | None = None,
    ) -> list[Tensor]:  # fmt: skip
        """The smoothed gradient of every differentiable leaf of ``call``: all of them perturbed
        together (``eps[j]`` for leaf ``call.diff[j]``, shared leaves ``(S, *shape)``), ``fn``
        evaluated once per sample, :func:`sample_weights` once, :func:`combine` per leaf
        (``groups``: as for :func:`smoothed_vjp`, the same for every leaf)."""
        scales = [self.sampler.scale_of(call, i) for i in call.diff]
        perturbed: list[Tensor | None] = [None] * len(call.leaves)
        for i, e, scale in zip(call.diff, eps, scales):
            perturbed[i] = call.leaves[i].unsqueeze(0) + scale * e
        outs, valid = blackbox.many_calls(call, perturbed, what=self.what)
        real = [k for k, y in enumerate(ys) if y.is_floating_point()]
        weights = sample_weights(
            flatten_outputs([outs[k] for k in real], 2), valid,
            flatten_outputs([ys[k] for k in real], 1),
            flatten_outputs([grad_ys[k] for k in real], 1),  # type: ignore[misc]
            groups=groups or (eps[0].shape[0],), baseline=self.baseline, shaping=self.shaping,
            what=self.what,
        )  # fmt: skip
        self._report(weights.stats)
        grads = []
        for j, i in enumerate(call.diff):
            score = eps[j] if scores is None else scores[j]
            if call.shared[i]:  # one draw per sample, seen by every item of the batch
                score = score.unsqueeze(1).expand(score.shape[0], call.batch, *score.shape[1:])
            grad = combine(weights, score, scales[j])
            grads.append(grad.sum(dim=0) if call.shared[i] else grad)
        return grads

    def _report(self, stats: ESStats) -> None:
        """Publish the telemetry of one estimate (each estimator says where)."""
        raise NotImplementedError
