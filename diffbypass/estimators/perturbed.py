"""Perturbed optimizers (Berthet et al., 2020) and their Fenchel–Young loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from diffbypass.arguments import Call
from diffbypass.base import BlackBoxError, BlackBoxFn, Evaluator, require_real, require_real_outputs
from diffbypass.blackbox import BlackBox
from diffbypass.noise import NOISES, Noise, Reflected
from diffbypass.sampler import NoiseSampler, SamplerMixin, Sigma, SigmaSpec
from diffbypass.smoothing import Smoothing, masked_mean, smoothed_mean
from diffbypass.stats import ESStats, Telemetry
from diffbypass.validation import one_of, sense_sign

__all__ = ["NOISES", "FenchelYoungLoss", "Noise", "Perturbed"]


def _noise(noise: str, sense: str) -> Noise:
    """The perturbation of an oracle of the given sense: a ``"min"`` oracle gets :math:`-Z`."""
    chosen = NOISES[one_of("noise", noise, tuple(NOISES))]
    return chosen if sense_sign("sense", sense) > 0 else Reflected(chosen)


class Perturbed(Telemetry[ESStats], Smoothing):
    r"""Perturbed optimizer (Berthet et al., 2020): the gradient of :math:`E[f(x + \sigma Z)]`.

    For a black box :math:`f` (typically :math:`f(\theta) = \arg\max_{y\in C}\langle y,
    \theta\rangle`, a one-hot argmax or an LP solver) the perturbed optimizer is
    :math:`f_\sigma(x) = E[f(x + \sigma Z)]` with :math:`Z \sim \mu \propto e^{-\nu}`, and

    .. math::
        \widehat{J_{f_\sigma}^\top v} = \frac{1}{\sigma S}\sum_{s=1}^S
        \langle v, f(x + \sigma Z_s)\rangle\, \nabla\nu(Z_s),

    with :math:`\nabla\nu(z) = z` for Gaussian and :math:`1 - e^{-z}` for Gumbel noise. For a
    one-hot argmax with Gumbel noise and :math:`\sigma = 1`, :math:`f_\sigma` *is* the softmax.
    As :math:`E[\nabla\nu(Z)] = 0` for both, subtracting a baseline :math:`\langle v, y\rangle`
    (the forward output) from every term keeps the estimate unbiased and cuts its variance (PyEPO's
    ``variance_reduction``).

    Args:
        sigma: perturbation scale (a number, per-coordinate tensor or
            :class:`~diffbypass.sampler.Relative`).
        samples: :math:`S` perturbed evaluations per backward (and per forward with
            ``output="smoothed"``).
        noise: ``"gaussian"`` or ``"gumbel"`` (the names of ``diffbypass.noise.NOISES``).
        output: ``"exact"`` — the forward returns ``fn(x)`` exactly (one call); or
            ``"smoothed"`` — the forward returns the Monte-Carlo :math:`f_\sigma(x)`, the
            average of :math:`S` perturbed outputs (the quantity whose gradient the backward
            estimates; the backward draws fresh samples, so the two are independent).
        baseline: subtract :math:`\langle v, y\rangle` (default ``True``).
        antithetic: pairs :math:`\pm Z` (Gaussian noise only; ``samples`` even).
        shaping: ``None`` or ``"centered_ranks"`` (as for :class:`~diffbypass.ES`).
        sense: ``"max"`` (default: ``fn`` increases with its input, e.g. argmax) or ``"min"``
            (argmin-type oracles such as shortest paths: perturb by :math:`-\sigma Z`, which
            for symmetric Gaussian noise changes nothing and for Gumbel keeps the max-form).
        generator: CPU ``torch.Generator`` for the noise.

    It is the smoothing of :class:`~diffbypass.ES` with another noise, and shares its formula
    (:func:`~diffbypass.smoothing.smoothed_vjp`): with ``Bypass(nonfinite="drop")`` samples where
    ``fn`` gave NaN/inf are left out, and ``stats`` / :meth:`register_fit_hook` report every
    estimate (:class:`~diffbypass.ESStats`).

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, Perturbed
        >>> onehot = lambda t: torch.nn.functional.one_hot(t.argmax(-1), t.shape[-1]).to(t.dtype)
        >>> layer = Bypass(onehot, Perturbed(sigma=1.0, samples=20000, noise="gumbel",
        ...                output="smoothed", generator=torch.Generator().manual_seed(0)))
        >>> theta = torch.tensor([[0.0, 1.0, 2.0]])
        >>> torch.allclose(layer(theta), theta.softmax(-1), atol=0.02)  # E[onehot] = softmax
        True
    """

    what = "perturbed samples"

    def __init__(
        self,
        *,
        sigma: SigmaSpec,
        samples: int,
        noise: str = "gaussian",
        output: str = "exact",
        sense: str = "max",
        baseline: bool = True,
        antithetic: bool = False,
        shaping: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(sigma=sigma, samples=samples, antithetic=antithetic, baseline=baseline,
                         shaping=shaping, generator=generator, noise=_noise(noise, sense))  # fmt: skip
        self.noise, self.sense = noise, sense
        self.mode = one_of("output", output, ("exact", "smoothed"))
        self._init_telemetry()

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        if self.mode == "exact":
            return super().output(blackbox, x)
        return smoothed_mean(blackbox, x, self.sampler.noise(x), self.sampler.scale(x), "Perturbed")

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        eps = self.sampler.noise(x)
        return self._estimate(blackbox, x, y, grad_y, eps, score=self.sampler.distribution.score(eps))

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        if self.mode == "exact":
            return super().output_call(blackbox, call)
        perturbed: list[Tensor | None] = [None] * len(call.leaves)
        for i in call.diff:
            leaf = call.leaves[i]
            perturbed[i] = leaf.unsqueeze(0) + self.sampler.scale_of(call, i) * self.sampler.noise(leaf)
        outs, valid = blackbox.many_calls(call, perturbed, what="Perturbed forward")
        return tuple(masked_mean(y, valid, "Perturbed forward") if y.is_floating_point() else y[0]
                     for y in require_real_outputs(outs, "Perturbed"))  # fmt: skip

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """Every differentiable argument perturbed at once, each weighted by its own score."""
        eps = [self.sampler.noise(call.leaves[i]) for i in call.diff]
        scores = [self.sampler.distribution.score(e) for e in eps]
        return self._estimate_call(blackbox, call, ys, grad_ys, eps, scores)

    def _report(self, stats: ESStats) -> None:
        self._publish(stats)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, noise={self.noise!r}, "
            f"output={self.mode!r}, sense={self.sense!r}, baseline={self.baseline}, "
            f"antithetic={self.sampler.antithetic}, shaping={self.shaping!r}"
        )


class _FenchelYoungFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, theta: Tensor, target: Tensor, loss: FenchelYoungLoss) -> Tensor:
        sign, what = loss._sign, "Fenchel-Young samples"
        perturbed = theta.detach().unsqueeze(0) + loss.sampler.scale(theta) * loss.sampler.noise(theta)
        ys, valid = loss.blackbox.many(perturbed, what=what)
        ys = require_real(ys, "FenchelYoungLoss").to(theta.dtype)
        if valid is not None and loss.nonfinite == "raise":
            bad = (~valid).nonzero().tolist()
            raise BlackBoxError(
                f"fn returned NaN/inf in {what}: {len(bad)} of {valid.numel()} perturbed "
                f"samples, first (sample, batch item) = {bad[:5]}; pass nonfinite='drop' to "
                "FenchelYoungLoss to leave such samples out"
            )
        b = theta.shape[0]
        # F(theta) = E max_y <theta + sigma Z, y>, estimated at the samples' own solutions
        inner = (perturbed * ys).reshape(ys.shape[0], b, -1).sum(2)
        value = masked_mean(inner, valid, what)
        value = sign * (value - (theta.detach() * target).reshape(b, -1).sum(1))
        ctx.save_for_backward(sign * (masked_mean(ys, valid, what) - target))
        ctx.reduction = loss.reduction
        if loss.reduction == "mean":
            return value.mean()
        return value.sum() if loss.reduction == "sum" else value

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (g,) = ctx.saved_tensors
        if ctx.reduction == "none":
            return g * grad.reshape((-1,) + (1,) * (g.dim() - 1)), None, None
        return g * (grad / g.shape[0] if ctx.reduction == "mean" else grad), None, None


class FenchelYoungLoss(SamplerMixin, nn.Module):
    r"""The perturbed Fenchel–Young loss (Berthet et al., 2020), for known target solutions.

    For an oracle :math:`f(\theta) = \arg\max_{y \in C}\langle y, \theta\rangle` (``sense="max"``)
    and a target :math:`y^\star`,

    .. math::
        L(\theta; y^\star) = E\big[\max_{y\in C}\langle y, \theta + \sigma Z\rangle\big]
        - \langle \theta, y^\star\rangle, \qquad
        \nabla_\theta L = E[f(\theta + \sigma Z)] - y^\star,

    (up to the constant :math:`\Omega(y^\star)`), convex in :math:`\theta`, zero gradient exactly
    when the perturbed optimizer reproduces the target. With ``sense="min"`` (an argmin oracle,
    e.g. PyEPO's PFYL for shortest paths) the loss is applied to :math:`-\theta`. The gradient
    needs only :math:`S` oracle calls per item and no backward call.

    Args:
        fn: the oracle, batched: ``(B, d) -> (B, d)`` solutions.
        sigma: perturbation scale.
        samples: :math:`S`, oracle calls per item and forward.
        noise: ``"gaussian"`` or ``"gumbel"``.
        sense: ``"max"`` or ``"min"``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the batch.
        nonfinite: ``"raise"`` (default: a :class:`~diffbypass.BlackBoxError` when ``fn``
            returns NaN/inf) or ``"drop"`` (leave such samples out of the averages).
        generator: CPU ``torch.Generator`` for the noise.

    Attributes:
        blackbox: the :class:`~diffbypass.BlackBox` evaluating ``fn`` (``.calls``, ``.instances``).

    Example:
        >>> import torch
        >>> from diffbypass import FenchelYoungLoss
        >>> onehot = lambda t: torch.nn.functional.one_hot(t.argmax(-1), t.shape[-1]).to(t.dtype)
        >>> loss = FenchelYoungLoss(onehot, sigma=1.0, samples=20000, noise="gumbel",
        ...                         generator=torch.Generator().manual_seed(0))
        >>> theta = torch.tensor([[0.0, 1.0, 2.0]], requires_grad=True)
        >>> target = torch.tensor([[0.0, 0.0, 1.0]])
        >>> loss(theta, target).backward()  # gradient: softmax(theta) - target
        >>> torch.allclose(theta.grad, theta.detach().softmax(-1) - target, atol=0.02)
        True
    """

    def __init__(
        self,
        fn: BlackBoxFn,
        *,
        sigma: Sigma,
        samples: int,
        noise: str = "gaussian",
        sense: str = "max",
        reduction: str = "mean",
        nonfinite: str = "raise",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self._sign = sense_sign("sense", sense)  # +1 for an argmax oracle, -1 for an argmin
        self.sampler = NoiseSampler(sigma, samples, generator=generator, noise=_noise(noise, sense))
        self.noise, self.sense = noise, sense
        self.reduction = one_of("reduction", reduction, ("mean", "sum", "none"))
        self.nonfinite = one_of("nonfinite", nonfinite, ("raise", "drop"))
        self.blackbox = BlackBox(fn, nonfinite="drop")  # NaN/inf samples are reported above

    def forward(self, theta: Tensor, target: Tensor) -> Tensor:
        """The loss of ``theta`` ``(B, ...)`` against the target solutions (same shape)."""
        if not isinstance(theta, Tensor) or theta.dim() < 2:
            raise ValueError(
                "theta must be a tensor of shape (B, ...); got "
                f"{tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__}"
            )
        if not theta.is_floating_point():
            raise TypeError(f"theta must be a floating-point tensor; got {theta.dtype}: pass "
                            "theta.float() (the loss is differentiated with respect to it)")  # fmt: skip
        if not isinstance(target, Tensor) or target.shape != theta.shape:
            got = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
            raise ValueError(f"target must have theta's shape {tuple(theta.shape)}; got {got}")
        for name, value in (("theta", theta), ("target", target)):
            bad = ~torch.isfinite(value.detach()) if value.is_floating_point() else None
            if bad is not None and bool(bad.any()):
                rows = bad.reshape(len(bad), -1).any(1).nonzero().flatten().tolist()
                raise ValueError(f"{name} must be finite; got {int(bad.sum())} NaN/inf value(s) "
                                 f"in batch item(s) {rows[:10]}")  # fmt: skip
        return _FenchelYoungFunction.apply(theta, target.to(theta.dtype), self)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, noise={self.noise!r}, "
            f"sense={self.sense!r}, reduction={self.reduction!r}, nonfinite={self.nonfinite!r}"
        )

