"""A bounded replay buffer of recent ``fn`` evaluations for the surrogate fit."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from diffbypass.validation import int_at_least, positive_number

__all__ = ["ReplayBuffer"]


class ReplayBuffer(nn.Module):
    r"""Keeps the last ``capacity`` (input, ``fn`` output) pairs and replays those near the input.

    Pass it to :class:`~diffbypass.Surrogate` as ``replay=ReplayBuffer(...)``: each fit then trains
    on its fresh perturbed samples *plus* the stored ones within ``radius`` of one of the current
    inputs — more fit data at no extra ``fn`` calls (as in local generative surrogates). The fit's
    held-out agreement (``FitStats.agreement_before``) is still measured on the fresh samples only.

    Args:
        capacity: most pairs kept (the oldest go first).
        radius: replay only stored inputs within this Euclidean distance of some current input
            (``None``: all of them). A multiple of :math:`\sigma\sqrt d` keeps the data local.

    Example:
        >>> import torch
        >>> buf = ReplayBuffer(capacity=5)
        >>> x, y = buf.extend(torch.zeros(3, 2), torch.ones(3, 1), near=torch.zeros(1, 2))
        >>> x.shape, len(buf)  # nothing stored yet: only the fresh pairs
        (torch.Size([3, 2]), 3)
        >>> x, y = buf.extend(torch.ones(4, 2), torch.ones(4, 1), near=torch.zeros(1, 2))
        >>> x.shape, len(buf)  # 4 fresh + the 3 stored; then keep the newest 5
        (torch.Size([7, 2]), 5)
    """

    def __init__(self, capacity: int, *, radius: float | None = None) -> None:
        super().__init__()
        self.capacity = int_at_least("capacity", capacity, 1)
        self.radius = None if radius is None else positive_number("radius", radius)
        self._inputs: Tensor | None = None
        self._targets: Tensor | None = None

    def __len__(self) -> int:
        return 0 if self._inputs is None else len(self._inputs)

    def extend(self, inputs: Tensor, targets: Tensor, near: Tensor) -> tuple[Tensor, Tensor]:
        """Return the fresh pairs followed by the stored ones near ``near``; then store the fresh.

        Args:
            inputs: fresh inputs ``(N, ...)``; targets: their outputs ``(N, ...)``.
            near: the current (unperturbed) inputs ``(B, ...)``.
        """
        inputs, targets = inputs.detach(), targets.detach()
        out_x, out_y = inputs, targets
        old_x, old_y = self._inputs, self._targets
        if old_x is not None and old_y is not None and old_x.shape[1:] == inputs.shape[1:]:
            old_x, old_y = old_x.to(inputs), old_y.to(targets)
            if self.radius is not None:
                dist = torch.cdist(old_x.flatten(1).double(), near.detach().flatten(1).double())
                keep = dist.min(dim=1).values <= self.radius
                old_x, old_y = old_x[keep], old_y[keep]
            out_x, out_y = torch.cat([inputs, old_x]), torch.cat([targets, old_y])
            new_x = torch.cat([self._inputs.to(inputs), inputs])
            new_y = torch.cat([self._targets.to(targets), targets])
        else:  # first call, or another input shape: start over
            new_x, new_y = inputs, targets
        self._inputs, self._targets = new_x[-self.capacity :], new_y[-self.capacity :]
        return out_x, out_y

    def clear(self) -> None:
        """Forget every stored pair."""
        self._inputs = self._targets = None

    def get_extra_state(self) -> dict[str, Any]:
        return {"inputs": self._inputs, "targets": self._targets}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._inputs = None if state["inputs"] is None else state["inputs"].clone()
        self._targets = None if state["targets"] is None else state["targets"].clone()

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, radius={self.radius}, stored={len(self)}"
