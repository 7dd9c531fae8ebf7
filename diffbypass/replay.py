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

    Its state (``state_dict``) holds the stored pairs; loading more pairs than ``capacity``
    keeps the newest ``capacity`` of them.

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

        Stored pairs of another per-item input shape are forgotten (a new problem); a changed
        per-item *output* shape for the same input shape is an error.

        Args:
            inputs: fresh inputs ``(N, ...)``; targets: their outputs ``(N, ...)``.
            near: the current (unperturbed) inputs ``(B, ...)``, shaped like ``inputs``' items.
        """
        inputs, targets = inputs.detach(), targets.detach()
        if len(inputs) != len(targets):
            raise ValueError(
                f"ReplayBuffer: inputs and targets must hold the same number of pairs; got "
                f"{len(inputs)} inputs and {len(targets)} targets"
            )
        if tuple(near.shape[1:]) != tuple(inputs.shape[1:]):
            raise ValueError(
                f"ReplayBuffer: near must have the inputs' per-item shape {tuple(inputs.shape[1:])}; "
                f"got {tuple(near.shape[1:])}"
            )
        stored = self._targets
        if (
            stored is not None and self._inputs is not None
            and self._inputs.shape[1:] == inputs.shape[1:] and stored.shape[1:] != targets.shape[1:]
        ):  # fmt: skip
            raise ValueError(
                f"ReplayBuffer: fn's per-item output shape changed from {tuple(stored.shape[1:])} "
                f"(stored pairs) to {tuple(targets.shape[1:])} for the same input shape "
                f"{tuple(inputs.shape[1:])}; call clear() if fn was replaced"
            )
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
        """Load stored pairs; more than ``capacity`` are trimmed to the newest ``capacity``, as
        :meth:`extend` would keep them."""
        inputs, targets = state["inputs"], state["targets"]
        if (inputs is None) != (targets is None) or (
            inputs is not None and (not isinstance(inputs, Tensor) or not isinstance(targets, Tensor)
                                    or len(inputs) != len(targets))
        ):  # fmt: skip
            raise ValueError(
                "ReplayBuffer state must hold inputs and targets as tensors with the same number "
                f"of pairs (or both None); got {_describe(inputs)} and {_describe(targets)}"
            )
        self._inputs = None if inputs is None else inputs[-self.capacity :].clone()
        self._targets = None if targets is None else targets[-self.capacity :].clone()

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, radius={self.radius}, stored={len(self)}"


def _describe(value: Any) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
