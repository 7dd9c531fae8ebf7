"""Gaussian-smoothing evolution strategy (ES)."""

from __future__ import annotations

import torch
from torch import Tensor

from typing import Any

from diffbypass.arguments import Call
from diffbypass.base import Evaluator
from diffbypass.sampler import SigmaSpec
from diffbypass.smoothing import Smoothing
from diffbypass.stats import ESStats, Telemetry

__all__ = ["ES"]


class ES(Telemetry[ESStats], Smoothing):
    r"""Gaussian-smoothing gradient (evolution strategy; Salimans et al., 2017).

    In the backward pass, for the incoming gradient :math:`v = \partial L / \partial y`, ES
    estimates the gradient of the Gaussian smoothing of :math:`\langle v, f(x)\rangle`:

    .. math::
        \hat g = \frac{1}{\sigma S} \sum_{s=1}^S \big(\langle v, f(x + \sigma\varepsilon_s)\rangle
        - b\big)\, \varepsilon_s, \qquad \varepsilon_s \sim \mathcal N(0, I),

    an unbiased estimate of :math:`\nabla_x \mathbb E_\varepsilon\langle v, f(x+\sigma\varepsilon)\rangle`
    for any baseline :math:`b` that does not depend on :math:`\varepsilon_s`.

    Args:
        sigma: smoothing scale :math:`\sigma > 0`; also a per-coordinate tensor or
            :class:`~diffbypass.sampler.Relative` (see :class:`~diffbypass.NoiseSampler`).
        samples: :math:`S`, evaluations of ``fn`` per input and backward pass.
        antithetic: use pairs :math:`\pm\varepsilon` (``samples`` must be even); removes the
            even part of ``f`` from the estimate.
        baseline: subtract :math:`b = \langle v, f(x)\rangle` (already computed in the forward
            pass) — reduces variance without bias.
        shaping: ``None`` or ``"centered_ranks"``: replace the :math:`S` values per input by their
            centred ranks in :math:`[-1/2, 1/2]` (robust to outliers; the result then estimates a
            *direction*, not the gradient's scale).
        generator: CPU ``torch.Generator`` for the noise (reproducible runs).

    ``fn`` must return real values: an integer (index) output has no :math:`v` to weight it, so
    ES raises ``TypeError`` at the first call; return floats from ``fn``, or use
    ``Surrogate(fit_loss="ce")`` with a loss on :meth:`Bypass.predict`. With
    ``Bypass(nonfinite="drop")`` samples where ``fn`` gave NaN/inf are left out of the average;
    a batch item left with no sample at all is an error (its gradient would silently be zero).

    Attributes:
        stats: :class:`~diffbypass.stats.ESStats` of the last estimate (samples used, dropped,
            spread of the weights); :meth:`register_fit_hook` calls a hook with it after every
            estimate, as for :class:`~diffbypass.Surrogate`.

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, ES
        >>> w = torch.tensor([[1.0, -2.0, 3.0]])
        >>> layer = Bypass(lambda x: x @ w.T, ES(sigma=0.1, samples=4000,
        ...                generator=torch.Generator().manual_seed(0)))
        >>> x = torch.zeros(1, 3, requires_grad=True)
        >>> layer(x).sum().backward()
        >>> torch.allclose(x.grad, w, atol=0.15)  # a linear fn: ES is exact in expectation
        True
    """

    def __init__(
        self,
        *,
        sigma: SigmaSpec,
        samples: int,
        antithetic: bool = True,
        baseline: bool = True,
        shaping: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sigma=sigma, samples=samples, antithetic=antithetic, baseline=baseline,
                         shaping=shaping, generator=generator)  # fmt: skip
        self._init_telemetry()

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        return self._estimate(blackbox, x, y, grad_y, self.sampler.noise(x))

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """Every differentiable argument perturbed at once with its own ``sigma``: ``samples``
        calls' worth of items per backward (one call per sample when a shared argument is
        perturbed)."""
        eps = [self.sampler.noise(call.leaves[i]) for i in call.diff]
        return self._estimate_call(blackbox, call, ys, grad_ys, eps)

    def _report(self, stats: ESStats) -> None:
        self._publish(stats)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, antithetic={self.sampler.antithetic}, "
            f"baseline={self.baseline}, shaping={self.shaping!r}"
        )
