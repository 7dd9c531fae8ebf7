r"""Perturbation distributions of the smoothing estimators: what is drawn, and its score.

A :class:`Noise` is a standardised distribution :math:`\mu(\varepsilon) \propto
e^{-\nu(\varepsilon)}`. The smoothing estimators perturb :math:`x + \sigma\varepsilon` and weight
each evaluation by the *score* :math:`\nabla\nu(\varepsilon)` (Berthet et al., 2020), which is
:math:`\varepsilon` itself for Gaussian noise (Gaussian smoothing, ES). Noise is drawn on the CPU
from the estimator's generator, so a seed gives the same draws on every device.

Example:
    >>> import torch
    >>> from diffbypass.noise import NOISES
    >>> z = NOISES["gumbel"].sample((100_000,), torch.Generator().manual_seed(0), torch.float64)
    >>> abs(float(NOISES["gumbel"].score(z).mean())) < 0.01  # a score has mean zero
    True
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

__all__ = ["NOISES", "Gaussian", "Gumbel", "Noise", "Reflected"]


class Noise(ABC):
    """A perturbation distribution: :meth:`sample` draws it, :meth:`score` weights a draw."""

    #: whether :math:`-\varepsilon` has the same law as :math:`\varepsilon` (antithetic pairs)
    symmetric: bool = False

    @abstractmethod
    def sample(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        """Independent draws of the given shape, on the CPU."""

    @abstractmethod
    def score(self, eps: Tensor) -> Tensor:
        r""":math:`\nabla\nu(\varepsilon) = -\nabla\log\mu(\varepsilon)`, elementwise."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Gaussian(Noise):
    r"""Standard normal noise; its score is :math:`\varepsilon`."""

    symmetric = True

    def sample(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=dtype)

    def score(self, eps: Tensor) -> Tensor:
        return eps


class Gumbel(Noise):
    r"""Standard Gumbel noise (a one-hot argmax perturbed by it is a softmax sample); its score
    is :math:`1 - e^{-\varepsilon}`."""

    def sample(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-300, 1.0 - 1e-16)
        return (-torch.log(-torch.log(u))).to(dtype)

    def score(self, eps: Tensor) -> Tensor:
        return 1.0 - torch.exp(-eps)


class Reflected(Noise):
    r"""The law of :math:`-\varepsilon` for :math:`\varepsilon` from ``noise`` (argmin oracles:
    ``Perturbed(sense="min")``); its score is :math:`-\nabla\nu(-\varepsilon)`."""

    def __init__(self, noise: Noise) -> None:
        self.noise = noise
        self.symmetric = noise.symmetric

    def sample(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        return -self.noise.sample(shape, generator, dtype)

    def score(self, eps: Tensor) -> Tensor:
        return -self.noise.score(-eps)

    def __repr__(self) -> str:
        return f"Reflected({self.noise!r})"


#: The perturbation distributions, looked up by name (``Perturbed(noise="gumbel")``).
NOISES: dict[str, Noise] = {"gaussian": Gaussian(), "gumbel": Gumbel()}
