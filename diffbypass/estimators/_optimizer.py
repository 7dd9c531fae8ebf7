"""The surrogate's optimiser: built from ``Surrogate``'s ``optimizer`` argument and checked.

The default Adam is built lazily (:class:`LazyAdam`): constructing any torch optimiser imports
``torch._dynamo``, a large part of a predicting program's start-up, which it never needs.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import torch
from torch import nn

__all__ = ["LazyAdam", "OptimizerSpec", "make_optimizer"]

OptimizerSpec = Union[None, torch.optim.Optimizer, Callable[..., torch.optim.Optimizer]]


class LazyAdam:
    """The default Adam (``lr``, ``foreach=True``) over ``params``, built at the first :meth:`get`.

    The parameters are taken when the surrogate is built, as an eager optimiser would.

    Args:
        params: the surrogate model's parameters (not empty).
        lr: learning rate (already validated).
    """

    def __init__(self, params: list[nn.Parameter], lr: float) -> None:
        self.params, self.lr = params, lr

    def get(self) -> torch.optim.Optimizer:
        """The Adam (built now: ``foreach``, the per-tensor loop's arithmetic in fewer calls)."""
        return torch.optim.Adam(self.params, lr=self.lr, foreach=True)

    def check_state(self, state: dict[str, Any]) -> None:
        """Raise what ``Adam.load_state_dict`` raises for ``state`` of another group layout.

        Raises:
            ValueError: ``state`` is not for one group of ``len(params)`` parameters.
        """
        groups, _ = state["param_groups"], state["state"]  # a KeyError, as Adam's
        if len(groups) != 1:
            raise ValueError("loaded state dict has a different number of parameter groups")
        if len(groups[0]["params"]) != len(self.params):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of "
                "optimizer's group"
            )


def make_optimizer(
    model: nn.Module, spec: OptimizerSpec, lr: float
) -> torch.optim.Optimizer | LazyAdam:
    """The optimiser over ``model``'s parameters that ``spec`` describes.

    Args:
        model: the surrogate network; it must have parameters.
        spec: ``None`` (Adam with ``lr``, ``foreach=True``), an optimiser over ``model``'s
            parameters, or a factory ``params -> optimiser``.
        lr: learning rate of the default Adam (already validated).

    Returns:
        The optimiser, or for ``spec=None`` the :class:`LazyAdam` that builds it.

    Raises:
        ValueError: ``model`` has no parameters, or the optimiser holds other parameters.
        TypeError: ``spec`` is none of the above, or the factory returned no optimiser.
    """
    params = list(model.parameters())
    if not params:
        raise ValueError("model must have trainable parameters; got a model without any")
    if spec is None:
        return LazyAdam(params, lr)
    if isinstance(spec, torch.optim.Optimizer):
        opt = spec
    elif callable(spec):
        opt = spec(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer factory must return a torch.optim.Optimizer; got {type(opt).__name__}"
            )
    else:
        raise TypeError(
            "optimizer must be None, a torch.optim.Optimizer or a factory params -> optimizer; "
            f"got {type(spec).__name__}"
        )
    mine = {id(p) for p in params}
    if any(id(p) not in mine for g in opt.param_groups for p in g["params"]):
        raise ValueError("optimizer must only hold the surrogate model's parameters")
    return opt
