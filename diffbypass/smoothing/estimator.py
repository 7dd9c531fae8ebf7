"""The base class of ES, Perturbed and GuidedES: the sampler, the options, the telemetry.

:class:`Smoothing` owns the :class:`~diffbypass.NoiseSampler` and the options of
:func:`~diffbypass.smoothing.smoothed_vjp` (``baseline``, ``shaping``), checks that ``fn``'s
output is real, and estimates the gradient of one input (:meth:`Smoothing._estimate`) or of
every differentiable argument of a call (:meth:`Smoothing._estimate_call`) with the formula of
:mod:`diffbypass.smoothing.formula`; each subclass says where the telemetry goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from diffbypass.arguments import Call, flatten_outputs
from diffbypass.base import Estimator, Evaluator, require_real, require_real_outputs
from diffbypass.noise import Noise
from diffbypass.sampler import NoiseSampler, SamplerMixin, SigmaSpec
from diffbypass.smoothing.formula import SHAPINGS, combine, sample_weights, smoothed_vjp
from diffbypass.stats import ESStats
from diffbypass.validation import one_of

__all__ = ["Smoothing"]


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
