"""The noise sampler shared by :class:`~diffbypass.Surrogate` and the smoothing estimators."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any, Union

import torch
from torch import Tensor

from diffbypass import distributed
from diffbypass.noise import Gaussian, Noise
from diffbypass.validation import instance_of, int_at_least, positive_number

__all__ = ["NoiseSampler", "Relative", "SamplerMixin", "Sigma", "SigmaSpec"]


@dataclass(frozen=True)
class Relative:
    r"""A relative (multiplicative) noise scale: coordinate :math:`i` gets :math:`\sigma |x_i|`.

    Pass it wherever an estimator takes ``sigma``, e.g. ``ES(sigma=Relative(0.1), samples=8)``:
    the perturbation is :math:`x \odot (1 + \sigma\varepsilon)`. A coordinate with
    :math:`x_i = 0` is not perturbed, and ES reports a zero gradient for it.
    """

    sigma: float

    def __post_init__(self) -> None:
        positive_number("Relative.sigma", self.sigma)


Sigma = Union[float, Tensor, Relative]
"""A noise scale: a number, a per-coordinate tensor (broadcast to an item) or :class:`Relative`."""


SigmaSpec = Union[Sigma, Mapping[str, Sigma], Sequence[Sigma]]
"""A noise scale for every argument (a :data:`Sigma`), or one per argument of a black box with
several: a dict keyed by ``fn``'s parameter names (``{"x": 0.1, "theta": Relative(0.05)}``) or a
tuple in the order of ``fn``'s parameters."""


def _check_sigma(sigma: Any, name: str = "sigma") -> Any:
    if isinstance(sigma, Relative):
        return sigma
    if isinstance(sigma, Mapping) and name == "sigma":
        if not sigma or not all(isinstance(k, str) for k in sigma):
            raise ValueError(f"sigma per argument must map fn's parameter names to scales; got {sigma!r}")
        return {k: _check_sigma(v, f"sigma[{k!r}]") for k, v in sigma.items()}
    if isinstance(sigma, (tuple, list)) and name == "sigma":
        if not sigma:
            raise ValueError("sigma per argument must hold one scale per parameter of fn; got ()")
        return tuple(_check_sigma(v, f"sigma[{i}]") for i, v in enumerate(sigma))
    if isinstance(sigma, Tensor):
        if not sigma.is_floating_point() or sigma.numel() == 0:
            raise ValueError(
                f"{name} must be a non-empty float tensor; got {sigma.dtype}, {tuple(sigma.shape)}"
            )
        if not bool(torch.isfinite(sigma).all()) or not bool((sigma > 0).all()):
            raise ValueError(f"{name} must be finite and > 0 in every coordinate; got a tensor "
                             f"with min {float(sigma.min())}")  # fmt: skip
        return sigma.detach().clone()
    return positive_number(name, sigma)


def _leaf_scale(sigma: Any, leaf: Tensor, item: tuple[int, ...], name: str) -> float | Tensor:
    """The scale ``sigma`` at ``leaf``, whose coordinates of one item have shape ``item``."""
    if isinstance(sigma, Relative):
        return sigma.sigma * leaf.detach().abs()
    if isinstance(sigma, Tensor):
        try:
            return sigma.to(leaf.device, leaf.dtype).expand(item)
        except RuntimeError:
            raise ValueError(
                f"per-coordinate sigma of shape {tuple(sigma.shape)} does not broadcast "
                f"to {name} shape {item}"
            ) from None
    return sigma


class NoiseSampler:
    r"""Perturbations :math:`x + \sigma\varepsilon_s`, :math:`\varepsilon_s \sim \mathcal N(0, I)`
    or another :class:`~diffbypass.noise.Noise`, in the whole space or inside given directions.

    Args:
        sigma: noise scale :math:`\sigma > 0`: a number, a tensor of per-coordinate scales
            broadcastable to one input item's shape (e.g. ``torch.tensor([0.1, 1.0])`` for
            items of shape ``(2,)``), or :class:`Relative` for :math:`\sigma |x|`. For a
            black box with several arguments also one per argument (:data:`SigmaSpec`): a
            dict by parameter name or a tuple in parameter order; a shared argument's tensor
            scale broadcasts to its whole shape.
        samples: number :math:`S \ge 1` of perturbations per input.
        antithetic: draw :math:`S/2` directions and use each with both signs
            (:math:`\varepsilon, -\varepsilon`); ``samples`` must then be even, and the noise
            symmetric.
        generator: a CPU ``torch.Generator``; by default a new one seeded from the global RNG at
            construction, so ``torch.manual_seed`` before building makes runs reproducible.
        noise: the distribution of :math:`\varepsilon` (default standard normal).

    Noise is drawn on the CPU and moved to the input's device, so a seed gives the same noise on
    every device and for every executor. Under a ``torch.distributed`` process group each rank
    draws its own independent noise, and the generator's state stays the same on every rank
    (:mod:`diffbypass.distributed`).

    Example:
        >>> s = NoiseSampler(sigma=0.5, samples=4, antithetic=True,
        ...                  generator=torch.Generator().manual_seed(0))
        >>> eps = s.noise(torch.zeros(3, 2))
        >>> eps.shape
        torch.Size([4, 3, 2])
        >>> bool(torch.equal(eps[2:], -eps[:2]))
        True
    """

    def __init__(
        self,
        sigma: SigmaSpec,
        samples: int,
        *,
        antithetic: bool = False,
        generator: torch.Generator | None = None,
        noise: Noise | None = None,
    ) -> None:
        self.sigma = _check_sigma(sigma)
        self.distribution = Gaussian() if noise is None else instance_of("noise", noise, Noise)
        self.samples = int_at_least("samples", samples, 1)
        self.antithetic = bool(antithetic)
        if self.antithetic and self.samples % 2:
            raise ValueError(
                f"samples must be even when antithetic=True (pairs +eps, -eps); got {samples}"
            )
        if self.antithetic and not self.distribution.symmetric:
            raise ValueError(
                f"antithetic=True needs a symmetric noise (pairs +eps, -eps); got "
                f"{self.distribution!r}: pass antithetic=False"
            )
        if generator is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
            generator = torch.Generator().manual_seed(seed)
        elif not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator; got {type(generator).__name__}")
        elif generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU generator; got one on {generator.device}")
        self.generator = generator
        self._shared = False  # under DDP: was the state broadcast from rank 0 (first draw)?

    def draw(self, count: int, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """``count`` draws of the noise, shape ``(count, *shape)`` on the CPU; with
        ``antithetic`` the second half is the first half negated (``count`` even)."""
        generator = self.generator
        if distributed.active():  # independent noise per rank (diffbypass.distributed)
            generator = distributed.rank_generator(generator, shared=self._shared)
            self._shared = True
        if not self.antithetic:
            return self.distribution.sample((count, *shape), generator, dtype)
        half = self.distribution.sample((count // 2, *shape), generator, dtype)
        return torch.cat([half, -half])

    def noise(self, x: Tensor) -> Tensor:
        """Directions :math:`\\varepsilon` of shape ``(S, *x.shape)`` on ``x``'s device."""
        dtype = x.dtype if x.dtype.is_floating_point else torch.float32
        return self.draw(self.samples, tuple(x.shape), dtype).to(x.device)

    def within(self, basis: Tensor, count: int) -> Tensor:
        r"""``count`` directions :math:`Uw` inside the span of the orthonormal columns
        :math:`U` of ``basis`` ``(B, n, k)``, :math:`w` drawn from the noise: ``(count, B, n)``."""
        w = self.draw(count, (basis.shape[0], basis.shape[2]), basis.dtype).to(basis.device)
        return torch.einsum("bnk,sbk->sbn", basis, w)

    def outside(self, basis: Tensor, count: int) -> Tensor:
        r"""``count`` directions :math:`(I - UU^\top)z` orthogonal to the span of ``basis``
        ``(B, n, k)``, :math:`z` drawn from the noise: ``(count, B, n)``."""
        z = self.draw(count, basis.shape[:2], basis.dtype).to(basis.device)
        return z - torch.einsum("bnk,sbk->sbn", basis, torch.einsum("bnk,sbn->sbk", basis, z))

    def scale(self, x: Tensor) -> float | Tensor:
        """The noise scale at ``x``: a number, or a tensor broadcastable to ``x.shape``."""
        if isinstance(self.sigma, (dict, tuple)):
            raise ValueError(
                f"sigma is given per argument ({self.sigma!r}), but fn was called with one "
                "tensor; pass one scale (a number, tensor or Relative)"
            )
        return _leaf_scale(self.sigma, x, tuple(x.shape[1:]), "the input items'")

    def scale_of(self, call: Any, i: int) -> float | Tensor:
        """The noise scale of leaf ``i`` of a :class:`~diffbypass.arguments.Call` (its
        argument's entry of a per-argument ``sigma``); broadcastable to the leaf's shape."""
        sigma, arg = self.sigma, call.arguments[i]
        if isinstance(sigma, dict):
            unknown = [k for k in sigma if k not in call.spec.parameters]
            if unknown and call.spec.signature is not None:
                raise ValueError(f"sigma names {unknown[0]!r}, which is not a parameter of fn; "
                                 f"fn's parameters are {call.spec.parameters}")  # fmt: skip
            if arg not in sigma:
                raise ValueError(
                    f"sigma has no scale for the argument {arg!r} (it names {tuple(sigma)}); "
                    "give every argument that requires grad a scale"
                )
            sigma = sigma[arg]
        elif isinstance(sigma, tuple):
            position = call.position(i)
            if position >= len(sigma):
                raise ValueError(
                    f"sigma has {len(sigma)} scale(s), one per parameter of fn in order; the "
                    f"argument {arg!r} is parameter {position} (counting from 0)"
                )
            sigma = sigma[position]
        leaf = call.leaves[i]
        item = tuple(leaf.shape) if call.shared[i] else tuple(leaf.shape[1:])
        return _leaf_scale(sigma, leaf, item, f"argument {call.names[i]}'s")

    def perturb(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x + scale * eps, eps)`` with shapes ``(S, *x.shape)``."""
        eps = self.noise(x)
        return x.detach().unsqueeze(0) + self.scale(x) * eps, eps

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (
            f"NoiseSampler(sigma={self.sigma}, samples={self.samples}, "
            f"antithetic={self.antithetic}"
            + ("" if isinstance(self.distribution, Gaussian) else f", noise={self.distribution!r}")
            + ")"
        )


class SamplerMixin:
    """``sigma`` and ``samples`` of an estimator that owns a :class:`NoiseSampler`, and the
    sampler's random state in the module's ``state_dict``."""

    sampler: NoiseSampler

    @property
    def sigma(self) -> float:
        """The noise scale :math:`\\sigma`."""
        return self.sampler.sigma

    @property
    def samples(self) -> int:
        """The number :math:`S` of perturbations per input."""
        return self.sampler.samples

    def get_extra_state(self) -> dict[str, Any]:
        """The noise generator's state (saved with ``state_dict``)."""
        return {"sampler": self.sampler.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore the noise generator's state (``load_state_dict``)."""
        self.sampler.load_state_dict(state["sampler"])
