"""The differentiable bypass: a network fitted to the black box around the current input."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Callable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from diffbypass.validation import int_at_least, positive_number
from diffbypass.base import Estimator
from diffbypass.blackbox import BlackBox, BlackBoxError
from diffbypass.sampler import NoiseSampler, SamplerMixin
from diffbypass.stats import FitHook, FitStats, agreement

__all__ = ["Surrogate"]

FitLoss = Union[str, Callable[[Tensor, Tensor], Tensor]]
OptimizerSpec = Union[None, torch.optim.Optimizer, Callable[..., torch.optim.Optimizer]]


class Surrogate(SamplerMixin, Estimator):
    r"""The differentiable bypass (Nguyen, 2019): train through a learned surrogate of ``fn``.

    In training mode each forward pass first runs the *noise-exploration sampler*: it evaluates
    ``fn`` at :math:`S` perturbed copies :math:`x + \sigma\varepsilon_s` of the current input
    (one vectorised call) and takes ``fit_steps`` optimiser steps of ``model`` on all of them;
    then it returns ``fn(x)``. The backward pass returns the vector-Jacobian product of the
    *model* at :math:`x` — ``fn`` is not called again. In eval mode nothing is fitted and ``fn``
    is called exactly once per forward.

    Args:
        model: the surrogate network :math:`F`; ``F(x)`` has ``fn(x)``'s shape
            (``fit_loss="mse"``) or that shape plus a last axis of class logits
            (``fit_loss="ce"``, ``fn`` returning integer indices).
        sigma: exploration noise scale :math:`\sigma > 0` (thesis: 1).
        samples: :math:`S \ge 1` perturbed copies per input and forward (thesis: 10).
        fit_steps: optimiser steps per forward, each on all :math:`S \cdot B` samples (thesis: 10;
            0 disables fitting).
        fit_loss: ``"mse"``, ``"ce"`` or a callable ``loss(prediction, target) -> scalar``.
        optimizer: ``None`` (Adam over ``model``'s parameters with ``lr``), an optimiser over
            ``model``'s parameters, or a factory ``params -> optimiser``.
        lr: learning rate of the default Adam.
        antithetic: draw the noise in :math:`\pm\varepsilon` pairs.
        generator: CPU ``torch.Generator`` for the noise (reproducible runs).
        replay: a :class:`~diffbypass.ReplayBuffer`: fit also on stored recent evaluations near
            the input (no extra ``fn`` calls); agreement is still measured on the fresh samples.

    Attributes:
        stats: :class:`~diffbypass.stats.FitStats` of the last fit (``None`` before the first).

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, Surrogate
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
        >>> layer = Bypass(lambda x: x[:, :3].round(),  # piecewise constant: no useful gradient
        ...                Surrogate(net, sigma=0.5, samples=8, fit_steps=2))
        >>> x = torch.randn(5, 4, requires_grad=True)
        >>> layer(x).sum().backward()  # fits net, then backpropagates through it
        >>> x.grad.shape, layer.stats.steps
        (torch.Size([5, 4]), 2)
    """

    calls_fn_in_backward = False

    def __init__(
        self,
        model: nn.Module,
        *,
        sigma: float = 1.0,
        samples: int = 10,
        fit_steps: int = 10,
        fit_loss: FitLoss = "mse",
        optimizer: OptimizerSpec = None,
        lr: float = 1e-3,
        antithetic: bool = False,
        generator: torch.Generator | None = None,
        replay: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.replay = replay  # a ReplayBuffer (diffbypass.replay), or None
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.sampler = NoiseSampler(sigma, samples, antithetic=antithetic, generator=generator)
        self.fit_steps = int_at_least("fit_steps", fit_steps, 0)
        if not (callable(fit_loss) or fit_loss in ("mse", "ce")):
            raise ValueError(f"fit_loss must be 'mse', 'ce' or a callable; got {fit_loss!r}")
        self.fit_loss = fit_loss
        self.optimizer = self._make_optimizer(optimizer, positive_number("lr", lr))
        self.stats: FitStats | None = None
        # an OrderedDict: RemovableHandle keeps a weak reference to it (a plain dict has none)
        self._hooks: OrderedDict[int, FitHook] = OrderedDict()
        self._checked: set[tuple[int, ...]] = set()

    def _make_optimizer(self, spec: OptimizerSpec, lr: float) -> torch.optim.Optimizer:
        params = list(self.model.parameters())
        if not params:
            raise ValueError("model must have trainable parameters; got a model without any")
        if spec is None:
            return torch.optim.Adam(params, lr=lr)
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

    # ------------------------------------------------------------------ public
    def register_fit_hook(self, hook: FitHook) -> RemovableHandle:
        """Call ``hook(surrogate, stats)`` after every fit (for loggers and progress bars)."""
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def predict(self, x: Tensor) -> Tensor:
        """``model(x)`` with gradients to ``x`` only (the parameters are used detached)."""
        params = {k: v.detach() for k, v in self.model.named_parameters()}
        params.update(dict(self.model.named_buffers()))
        return torch.func.functional_call(self.model, params, (x,))

    # ------------------------------------------------------------------ Estimator
    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        y = blackbox(x, what="forward")
        self._check_model(x, y)
        if self.training and self.fit_steps > 0:
            self.fit(blackbox, x)
        return y

    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        with torch.enable_grad():
            xx = x.detach().requires_grad_(True)
            out = self.predict(xx)
            (grad_x,) = torch.autograd.grad(out, xx, grad_y.to(out.dtype))
        return grad_x

    # ------------------------------------------------------------------ fitting
    def fit(self, blackbox: BlackBox, x: Tensor) -> FitStats:
        """Sample around ``x``, evaluate ``fn`` there and fit the model; returns the stats."""
        xs, _ = self.sampler.perturb(x)
        ys, valid = blackbox.many(xs, what="surrogate fit samples")
        inputs, targets = xs.flatten(0, 1), ys.flatten(0, 1)
        dropped = 0
        if valid is not None:
            keep = valid.flatten()
            dropped = int((~keep).sum())
            inputs, targets = inputs[keep], targets[keep]
        if self.fit_loss == "ce" and len(targets):  # indices out of range fail in cross_entropy
            low, high = int(targets.min()), int(targets.max())
            classes = getattr(self, "_classes", None)
            if low < 0 or (classes is not None and high >= classes):
                raise BlackBoxError(
                    f"fn returned class index {low if low < 0 else high} in surrogate fit "
                    f"samples; the surrogate has {classes} classes (its last axis)"
                )
        metric = "accuracy" if self.fit_loss == "ce" else "r2"
        if len(inputs) == 0:
            raise BlackBoxError("every perturbed sample of the surrogate fit was NaN/inf")
        fresh = len(inputs)  # agreement is measured on these; replayed pairs only add fit data
        if self.replay is not None:
            inputs, targets = self.replay.extend(inputs, targets, near=x)
        losses = []
        with torch.enable_grad():
            for step in range(self.fit_steps):
                self.optimizer.zero_grad(set_to_none=True)
                pred = self.model(inputs)
                if step == 0:
                    before = agreement(pred.detach()[:fresh], targets[:fresh], metric)
                loss = self._loss(pred, targets)
                loss.backward()
                self.optimizer.step()
                losses.append(float(loss.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            after = agreement(self.model(inputs[:fresh]), targets[:fresh], metric)
        self.stats = FitStats(
            loss_first=losses[0], loss_last=losses[-1], agreement_before=before,
            agreement_after=after, metric=metric, samples=fresh, dropped=dropped,
            steps=self.fit_steps,
        )  # fmt: skip
        for hook in list(self._hooks.values()):
            hook(self, self.stats)
        return self.stats

    def _loss(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.fit_loss == "ce":
            return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
        if self.fit_loss == "mse":
            return F.mse_loss(pred, target.to(pred.dtype))
        return self.fit_loss(pred, target)  # type: ignore[operator]

    def _check_model(self, x: Tensor, y: Tensor) -> None:
        """At the first call per input shape: does the model's output fit fn's output?"""
        if self.fit_loss == "ce":
            if y.is_floating_point():
                raise BlackBoxError(
                    f"fit_loss='ce' needs fn to return integer class indices; got {y.dtype}"
                )
            if int(y.min()) < 0:
                raise BlackBoxError(f"fn returned a negative class index ({int(y.min())})")
        key = tuple(x.shape[1:])
        if key in self._checked:
            if self.fit_loss == "ce" and int(y.max()) >= self._classes:
                raise BlackBoxError(
                    f"fn returned class index {int(y.max())} but the surrogate has "
                    f"{self._classes} classes (its last axis)"
                )
            return
        with torch.no_grad():
            out = self.predict(x[:1])
        expected = tuple(y.shape[1:])
        if self.fit_loss == "ce":
            got = tuple(out.shape[1:-1])
            self._classes = out.shape[-1]
            if got != expected or int(y.max()) >= self._classes:
                raise BlackBoxError(
                    f"with fit_loss='ce' the surrogate must return logits of shape (B, *{expected}, "
                    f"K) with K > max index {int(y.max())}; got (B, *{tuple(out.shape[1:])})"
                )
        elif callable(self.fit_loss) and not isinstance(self.fit_loss, str):
            pass  # a custom loss defines its own pairing of prediction and target
        elif tuple(out.shape[1:]) != expected:
            raise BlackBoxError(
                f"the surrogate must return fn's per-item shape {expected}; "
                f"got {tuple(out.shape[1:])}"
            )
        self._checked.add(key)

    # ------------------------------------------------------------------ state
    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "sampler": self.sampler.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        # a copy, as Module.load_state_dict copies parameters: the optimiser state (e.g. Adam's
        # moments) must not stay shared with the layer the state came from
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.sampler.load_state_dict(state["sampler"])

    def extra_repr(self) -> str:
        loss = self.fit_loss if isinstance(self.fit_loss, str) else getattr(self.fit_loss, "__name__", "custom")
        return (
            f"sigma={self.sigma}, samples={self.samples}, fit_steps={self.fit_steps}, "
            f"fit_loss={loss!r}"
        )
