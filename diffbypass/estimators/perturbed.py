"""Perturbed optimizers (Berthet et al., 2020) and their Fenchel–Young loss."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
from torch import Tensor, nn

from diffbypass.base import BlackBoxFn, Estimator, require_real
from diffbypass.blackbox import BlackBox
from diffbypass.sampler import NoiseSampler, SamplerMixin, Sigma
from diffbypass.validation import int_at_least, one_of

__all__ = ["NOISES", "FenchelYoungLoss", "Noise", "Perturbed"]


class Noise(NamedTuple):
    """A noise distribution :math:`\\mu(z) \\propto e^{-\\nu(z)}` of the perturbation.

    ``sample(shape, generator, dtype)`` draws :math:`Z`; ``score(z)`` is :math:`\\nabla\\nu(z)`,
    the weight of Berthet et al.'s gradient formula.
    """

    sample: Callable[[tuple[int, ...], torch.Generator, torch.dtype], Tensor]
    score: Callable[[Tensor], Tensor]


def _gumbel(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-300, 1.0 - 1e-16)
    return (-torch.log(-torch.log(u))).to(dtype)


#: The perturbation distributions, looked up by name.
NOISES: dict[str, Noise] = {
    "gaussian": Noise(
        lambda shape, g, dtype: torch.randn(shape, generator=g, dtype=dtype), lambda z: z
    ),
    "gumbel": Noise(_gumbel, lambda z: 1.0 - torch.exp(-z)),
}


def _perturbed_samples(
    sampler: NoiseSampler, noise: str, blackbox: BlackBox, x: Tensor, sign: float, what: str
) -> tuple[Tensor, Tensor, Tensor | float]:
    """``(fn(x + sign * scale * Z), Z, scale)`` for ``S`` draws, shapes ``(S, *x.shape)``."""
    dtype = x.dtype if x.dtype.is_floating_point else torch.float32
    z = NOISES[noise].sample((sampler.samples, *x.shape), sampler.generator, dtype).to(x.device)
    scale = sampler.scale(x)
    ys, valid = blackbox.many(x.detach().unsqueeze(0) + sign * scale * z, what=what)
    if valid is not None:
        raise ValueError(
            f"{what}: fn returned NaN/inf; perturbed optimizers cannot drop samples (use ES)"
        )
    return ys, z, scale


class Perturbed(SamplerMixin, Estimator):
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
        noise: ``"gaussian"`` or ``"gumbel"`` (see :data:`NOISES`).
        output: ``"exact"`` — the forward returns ``fn(x)`` exactly (one call); or
            ``"smoothed"`` — the forward returns the Monte-Carlo :math:`f_\sigma(x)`, the
            average of :math:`S` perturbed outputs (the quantity whose gradient the backward
            estimates; the backward draws fresh samples, so the two are independent).
        baseline: subtract :math:`\langle v, y\rangle` (default ``True``).
        sense: ``"max"`` (default: ``fn`` increases with its input, e.g. argmax) or ``"min"``
            (argmin-type oracles such as shortest paths: perturb by :math:`-\sigma Z`, which
            for symmetric Gaussian noise changes nothing and for Gumbel keeps the max-form).
        generator: CPU ``torch.Generator`` for the noise.

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

    def __init__(
        self,
        *,
        sigma: Sigma,
        samples: int,
        noise: str = "gaussian",
        output: str = "exact",
        sense: str = "max",
        baseline: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        int_at_least("samples", samples, 1)
        self.sampler = NoiseSampler(sigma, samples, generator=generator)
        self.noise = one_of("noise", noise, tuple(NOISES))
        self.baseline = bool(baseline)
        self.mode = one_of("output", output, ("exact", "smoothed"))
        self.sense = one_of("sense", sense, ("max", "min"))

    @property
    def _sign(self) -> float:
        return 1.0 if self.sense == "max" else -1.0

    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        if self.mode == "exact":
            return require_real(blackbox(x, what="forward"), "Perturbed")
        ys, _, _ = _perturbed_samples(
            self.sampler, self.noise, blackbox, x, self._sign, "perturbed forward"
        )
        return require_real(ys, "Perturbed").mean(dim=0)

    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        ys, z, scale = _perturbed_samples(
            self.sampler, self.noise, blackbox, x, self._sign, "perturbed samples"
        )
        s, b = ys.shape[0], x.shape[0]
        values = (require_real(ys, "Perturbed") * grad_y.unsqueeze(0)).reshape(s, b, -1).sum(2)
        if self.baseline:
            values = values - (y * grad_y).reshape(b, -1).sum(1)
        weights = values.to(z.dtype).reshape(s, b, *([1] * (x.dim() - 1)))
        g = (weights * NOISES[self.noise].score(z)).mean(dim=0) * self._sign
        if isinstance(scale, Tensor):
            return g * torch.where(scale > 0, 1 / scale.clamp(min=torch.finfo(g.dtype).tiny), 0.0)
        return g / scale

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, noise={self.noise!r}, "
            f"output={self.mode!r}, sense={self.sense!r}, baseline={self.baseline}"
        )


class _FenchelYoungFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, theta: Tensor, target: Tensor, loss: FenchelYoungLoss) -> Tensor:
        sign = loss._sign
        ys, z, scale = _perturbed_samples(
            loss.sampler, loss.noise, loss.blackbox, theta, sign, "Fenchel-Young samples"
        )
        ys = require_real(ys, "FenchelYoungLoss").to(theta.dtype)
        b = theta.shape[0]
        perturbed = theta.detach().unsqueeze(0) + sign * scale * z
        # F(theta) = E max_y <theta + sigma Z, y>, estimated at the samples' own solutions
        value = (perturbed * ys).reshape(ys.shape[0], b, -1).sum(2).mean(0)
        value = sign * (value - (theta.detach() * target).reshape(b, -1).sum(1))
        ctx.save_for_backward(sign * (ys.mean(0) - target))
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
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        int_at_least("samples", samples, 1)
        self.blackbox = BlackBox(fn)
        self.sampler = NoiseSampler(sigma, samples, generator=generator)
        self.noise = one_of("noise", noise, tuple(NOISES))
        self.sense = one_of("sense", sense, ("max", "min"))
        self.reduction = one_of("reduction", reduction, ("mean", "sum", "none"))

    @property
    def _sign(self) -> float:
        return 1.0 if self.sense == "max" else -1.0

    def forward(self, theta: Tensor, target: Tensor) -> Tensor:
        if not isinstance(theta, Tensor) or theta.dim() < 2:
            raise ValueError(
                "theta must be a tensor of shape (B, ...); got "
                f"{tuple(theta.shape) if isinstance(theta, Tensor) else type(theta).__name__}"
            )
        if not isinstance(target, Tensor) or target.shape != theta.shape:
            got = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
            raise ValueError(f"target must have theta's shape {tuple(theta.shape)}; got {got}")
        return _FenchelYoungFunction.apply(theta, target.to(theta.dtype), self)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, noise={self.noise!r}, "
            f"sense={self.sense!r}, reduction={self.reduction!r}"
        )

