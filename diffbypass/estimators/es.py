"""Gaussian-smoothing evolution strategy (ES)."""

from __future__ import annotations

import torch
from torch import Tensor

from diffbypass.base import Estimator, Evaluator, require_real
from diffbypass.blackbox import BlackBoxError
from diffbypass.sampler import NoiseSampler, SamplerMixin, Sigma
from diffbypass.stats import ESStats, Telemetry
from diffbypass.validation import one_of

__all__ = ["ES"]


def centered_ranks(values: Tensor, valid: Tensor | None = None) -> Tensor:
    """Replace ``values`` (S, B) by their ranks along S, scaled to [-0.5, 0.5] per column."""
    s = values.shape[0]
    if valid is not None:  # invalid samples rank last and are masked out by the caller
        values = values.masked_fill(~valid, float("inf"))
    ranks = values.argsort(dim=0).argsort(dim=0).to(values.dtype)
    count = s if valid is None else valid.sum(dim=0).clamp(min=1)
    denom = torch.as_tensor(count, dtype=values.dtype, device=values.device) - 1
    return ranks / denom.clamp(min=1) - 0.5


class ES(SamplerMixin, Telemetry[ESStats], Estimator):
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
        sigma: Sigma,
        samples: int,
        antithetic: bool = True,
        baseline: bool = True,
        shaping: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.sampler = NoiseSampler(sigma, samples, antithetic=antithetic, generator=generator)
        self.baseline = bool(baseline)
        self.shaping = None if shaping is None else one_of("shaping", shaping, ("centered_ranks",))
        self._init_telemetry()

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        return require_real(
            blackbox(x, what="forward"), "ES",
            "Return floats from fn (e.g. indices.float()), or use Surrogate(fit_loss='ce') and "
            "put the loss on Bypass.predict(x)",
        )  # fmt: skip

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        s, b = self.samples, x.shape[0]
        xs, eps = self.sampler.perturb(x)
        ys, valid = blackbox.many(xs, what="ES samples")
        values = (ys * grad_y.unsqueeze(0)).reshape(s, b, -1).sum(dim=2)  # (S, B)
        if self.baseline:
            values = values - (y * grad_y).reshape(b, -1).sum(dim=1)
        self._report(values, valid)
        if self.shaping == "centered_ranks":
            values = centered_ranks(values, valid)
        count: Tensor | int = s
        if valid is not None:
            values = values.masked_fill(~valid, 0.0)
            count = valid.sum(dim=0).clamp(min=1).to(values.dtype)  # (B,)
            count = count.reshape(b, *([1] * (x.dim() - 1)))
        weights = values.to(eps.dtype).reshape(s, b, *([1] * (x.dim() - 1)))
        scale = self.sampler.scale(x)  # a number, or per coordinate (0 where Relative meets x = 0)
        if isinstance(scale, Tensor):
            inv = torch.where(scale > 0, 1 / scale.clamp(min=torch.finfo(scale.dtype).tiny), 0.0)
            return (weights * eps).sum(dim=0) * inv / count
        return (weights * eps).sum(dim=0) / (scale * count)

    def _report(self, values: Tensor, valid: Tensor | None) -> None:
        """Raise if a batch item has no usable sample; publish :class:`ESStats`."""
        used = values.flatten() if valid is None else values[valid]
        if valid is not None:
            empty = (~valid.any(dim=0)).nonzero().flatten().tolist()
            if empty:
                raise BlackBoxError(
                    f"every perturbed sample of ES samples was NaN/inf for batch item(s) "
                    f"{empty[:10]}{'...' if len(empty) > 10 else ''} ({self.samples} samples each): "
                    "no sample left to estimate their gradient from"
                )
        spread = float(used.double().std()) if used.numel() > 1 else 0.0
        self._publish(ESStats(samples=used.numel(), dropped=values.numel() - used.numel(),
                              value_std=spread))  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, antithetic={self.sampler.antithetic}, "
            f"baseline={self.baseline}, shaping={self.shaping!r}"
        )
