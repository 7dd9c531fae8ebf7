"""The surrogate's optimiser: built from ``Surrogate``'s ``optimizer`` argument and checked."""

from __future__ import annotations

from typing import Callable, Union

import torch
from torch import nn

__all__ = ["OptimizerSpec", "make_optimizer"]

OptimizerSpec = Union[None, torch.optim.Optimizer, Callable[..., torch.optim.Optimizer]]


def make_optimizer(model: nn.Module, spec: OptimizerSpec, lr: float) -> torch.optim.Optimizer:
    """The optimiser over ``model``'s parameters that ``spec`` describes.

    Args:
        model: the surrogate network; it must have parameters.
        spec: ``None`` (Adam with ``lr``, ``foreach=True``), an optimiser over ``model``'s
            parameters, or a factory ``params -> optimiser``.
        lr: learning rate of the default Adam (already validated).

    Returns:
        The optimiser.

    Raises:
        ValueError: ``model`` has no parameters, or the optimiser holds other parameters.
        TypeError: ``spec`` is none of the above, or the factory returned no optimiser.
    """
    params = list(model.parameters())
    if not params:
        raise ValueError("model must have trainable parameters; got a model without any")
    if spec is None:  # foreach: the per-tensor loop's arithmetic, in fewer calls
        return torch.optim.Adam(params, lr=lr, foreach=True)
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
