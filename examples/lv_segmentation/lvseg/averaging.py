r"""Weight averaging: an exponential moving average (EMA) of a model's U-Net weights.

The average also follows the model's learned smoothness penalty, if it learns one. After every
optimiser step the average moves towards the trained weights,
:math:`\bar\theta \leftarrow d\,\bar\theta + (1 - d)\,\theta` (:func:`ema_update`; the
normalisation buffers are copied). Two users:

* ``lvseg train --average D``: validation, ``best.pt`` and therefore every evaluation and
  prediction of the run use the average instead of the last weights (Polyak averaging; the
  trained weights go on training unchanged). With ``warmup`` the decay of iteration :math:`t`
  is :math:`\min(d, (1 + t) / (w + t))` with :math:`w` =
  :data:`~lvseg.train_choices.AVERAGE_WARMUP`, the schedule of TensorFlow's
  ``ExponentialMovingAverage`` with ``num_updates``, so that an early validation is not the
  initial weights;
* the mean teacher of semi-supervised training (:mod:`lvseg.teacher`), a constant decay.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from lvseg.edpcnn import EDPCNN
from lvseg.star import StarConfig
from lvseg.train_choices import AVERAGE_WARMUP

__all__ = ["WeightAverage", "ema_update"]


def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    r"""``average``'s parameters :math:`\leftarrow d\,\bar\theta + (1 - d)\,\theta` in place,
    :math:`\theta` those of ``model``; its buffers (normalisation statistics) are copied."""
    with torch.no_grad():
        for a, p in zip(average.parameters(), model.parameters(), strict=True):
            a.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
        for a, b in zip(average.buffers(), model.buffers(), strict=True):
            a.copy_(b)


class _Smoothness(nn.Module):
    """The average's copy of a learned smoothness penalty's log (a module, so that
    :func:`ema_update` and ``state_dict`` treat it like the U-Net's weights)."""

    def __init__(self, log_smoothness: Tensor) -> None:
        super().__init__()
        self.log_smoothness = nn.Parameter(log_smoothness.detach().clone(), requires_grad=False)


class WeightAverage:
    """The EMA of ``model``'s U-Net (and learned smoothness penalty), starting as a copy.

    Args:
        model: a U-Net or an :class:`~lvseg.edpcnn.EDPCNN`
            (:func:`~lvseg.methods.build_model`).
        decay: :math:`d` in ``[0, 1]`` (1: the average stays the starting copy).
        warmup: lower the decay of the early iterations (the module docstring).
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = False) -> None:
        self.decay, self.warmup = float(decay), warmup
        edpcnn = isinstance(model, EDPCNN)
        self.unet = copy.deepcopy(model.unet if edpcnn else model).eval().requires_grad_(False)
        log = model.log_smoothness if edpcnn else None
        self.smoothness = None if log is None else _Smoothness(log)

    def decay_at(self, iteration: int) -> float:
        """The decay of ``iteration`` (1-based): :attr:`decay`, lowered early with warm-up."""
        if not self.warmup:
            return self.decay
        return min(self.decay, (1.0 + iteration) / (AVERAGE_WARMUP + iteration))

    def update(self, model: nn.Module, iteration: int) -> None:
        """One EMA step towards ``model`` after the optimiser step of ``iteration``."""
        decay = self.decay_at(iteration)
        edpcnn = isinstance(model, EDPCNN)
        ema_update(self.unet, model.unet if edpcnn else model, decay)
        if self.smoothness is not None:
            with torch.no_grad():
                log = self.smoothness.log_smoothness
                log.mul_(decay).add_(model.log_smoothness.detach(), alpha=1.0 - decay)

    def star(self, star: StarConfig) -> StarConfig:
        """``star`` with the average's smoothness penalty, if the model learns one."""
        return star.learned(None if self.smoothness is None else self.smoothness.log_smoothness)

    def model_state(self, model: nn.Module) -> dict[str, Tensor]:
        """``model.state_dict()`` with the U-Net's weights (and the smoothness penalty's log)
        replaced by the average's: what ``best.pt`` holds with ``--average``."""
        state = model.state_dict()
        prefix = "unet." if isinstance(model, EDPCNN) else ""
        for name, value in self.unet.state_dict().items():
            state[prefix + name] = value.clone()
        if self.smoothness is not None:
            state["log_smoothness"] = self.smoothness.log_smoothness.detach().clone()
        return state

    def state_dict(self) -> dict[str, Any]:
        """The average's weights (for ``last.pt``)."""
        return {"unet": self.unet.state_dict(),
                "smoothness": None if self.smoothness is None else self.smoothness.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (errors as ``nn.Module.load_state_dict``)."""
        self.unet.load_state_dict(state["unet"])
        if self.smoothness is not None:
            self.smoothness.load_state_dict(state["smoothness"])
