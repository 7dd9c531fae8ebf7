"""The batch sampler of training: shuffled epochs with a state that resumes exactly."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["BatchSampler"]


class BatchSampler:
    """Shuffled epochs over ``n`` items, ``batch_size`` at a time, with a saveable state.

    A batch never spans two epochs; a batch size above ``n`` gives the whole (shuffled) set.

    Example:
        >>> s = BatchSampler(5, 2, seed=0)
        >>> first = [s.next().tolist() for _ in range(3)]
        >>> state = s.state_dict(); a = s.next()
        >>> s.load_state_dict(state); bool((s.next() == a).all())
        True
    """

    def __init__(self, n: int, batch_size: int, *, seed: int) -> None:
        self.n, self.batch_size = int(n), int(batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.order = torch.randperm(self.n, generator=self.generator)
        self.position = 0

    def next(self) -> torch.Tensor:
        """Indices of the next batch (a new shuffle at the start of every epoch)."""
        if self.position >= self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.position = 0
        batch = self.order[self.position : self.position + self.batch_size]
        self.position += len(batch)
        return batch

    def state_dict(self) -> dict[str, Any]:
        """Generator state, current permutation and position (for exact resume)."""
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            ValueError: if ``order`` is not a permutation of the ``n`` items or ``position`` is
                not an integer in ``[0, n]`` (a checkpoint of another run, or a crafted one).
        """
        order, position = state["order"], state["position"]
        if not (isinstance(order, torch.Tensor) and order.dtype == torch.int64
                and order.shape == (self.n,)
                and torch.equal(order.sort().values, torch.arange(self.n))):
            raise ValueError(f"sampler order must be a permutation of the {self.n} training "
                             f"items; got {order!r:.80}")
        if isinstance(position, bool) or not isinstance(position, int) or not (
                0 <= position <= self.n):
            raise ValueError(f"sampler position must be an integer in [0, {self.n}]; got "
                             f"{position!r}")
        self.generator.set_state(state["generator"])
        self.order = order.clone()
        self.position = position
