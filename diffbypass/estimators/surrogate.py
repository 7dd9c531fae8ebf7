"""The differentiable bypass: a network fitted to the black box around the current input."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from diffbypass import distributed
from diffbypass.arguments import Packed
from diffbypass.base import Estimator, Evaluator
from diffbypass.blackbox import BlackBoxError
from diffbypass.estimators._fit_loop import fit_loop
from diffbypass.estimators._frozen import Freezer
from diffbypass.estimators._optimizer import LazyAdam, OptimizerSpec, make_optimizer
from diffbypass.estimators.surrogate_calls import SurrogateCalls
from diffbypass.estimators._threads import (
    ThreadedPredict,
    ThreadsSpec,
    num_threads,
    threads_for,
    threads_spec,
)
from diffbypass.losses import FitLoss, FitLossSpec, fit_loss as make_fit_loss
from diffbypass.sampler import NoiseSampler, SamplerMixin
from diffbypass.stats import FitStats, Telemetry
from diffbypass.validation import instance_of, int_at_least, one_of, positive_number

__all__ = ["Surrogate"]

class Surrogate(SurrogateCalls, SamplerMixin, Telemetry[FitStats], Estimator):
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
        fit_loss: ``"mse"``, ``"ce"``, a :class:`~diffbypass.losses.FitLoss` or a callable
            ``loss(prediction, target) -> scalar`` (see :mod:`diffbypass.losses`).
        optimizer: ``None`` (Adam over ``model``'s parameters with ``lr``, built at its first
            use: a fit or ``state_dict()``), an optimiser over ``model``'s parameters, or a
            factory ``params -> optimiser``.
        lr: learning rate of the default Adam.
        antithetic: draw the noise in :math:`\pm\varepsilon` pairs.
        generator: CPU ``torch.Generator`` for the noise (reproducible runs).
        nonfinite_fit: what a fit step with a NaN/inf loss or gradient does. The step is always
            skipped (the model and the optimiser state stay as they were); ``"raise"`` (default)
            then raises ``FloatingPointError``, ``"skip"`` goes on and counts the skipped steps
            in :attr:`FitStats.skipped <diffbypass.FitStats>`.
        replay: a :class:`~diffbypass.ReplayBuffer`: fit also on stored recent evaluations near
            the input (no extra ``fn`` calls); agreement is still measured on the fresh samples.
        report_after: measure :attr:`FitStats.agreement_after <diffbypass.FitStats>` with one
            more forward pass of ``model`` over the fresh samples after the last step (default).
            ``False`` skips that pass (in the LV example it was a third of a 2-step fit's cost)
            and leaves ``agreement_after`` ``None``; ``agreement_before`` is always measured,
            from the first step's forward pass, at no extra cost.
        threads: torch intra-op threads for the surrogate's own work (its fit, :meth:`predict`
            and its backward, the VJP). ``"auto"`` (default): one thread for a small surrogate
            (parameters times batch rows at most ``diffbypass.estimators._threads.SMALL_WORK``),
            where several threads only wait for each other and, on a busy machine, compete with
            other processes while they spin; the caller's setting for larger ones. ``None``:
            always the caller's setting; an integer: that many. The setting is process-wide
            while it applies (``torch.set_num_threads``) and restored after. When a thread
            count is set, :meth:`predict`'s output supports first-order gradients only.

    Inputs are cast to the model's dtype (a float64 or integer ``x`` with a float32 network);
    the gradient is cast back to ``x``'s dtype. Under a ``torch.distributed`` process group the
    surrogate stays the same on every rank: rank 0's state is broadcast at the first fit and
    each fit step averages the fit gradients over the ranks (:mod:`diffbypass.distributed`). In training mode the surrogate fits itself in
    the forward pass, which needs autograd: under ``torch.inference_mode()`` call ``.eval()``.

    Threads: several threads may call :meth:`predict`, an eval-mode forward and the backward of
    one Surrogate at the same time (the parameters stay detached for all of them). A training-mode
    forward fits the model and must not run while another thread uses the same Surrogate; and a
    ``threads`` setting is process-wide, so concurrent calls may run on each other's thread count.

    Attributes:
        stats: :class:`~diffbypass.stats.FitStats` of the last fit (``None`` before the first);
            :meth:`register_fit_hook` calls a hook with it after every fit.

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
        fit_loss: FitLossSpec = "mse",
        optimizer: OptimizerSpec = None,
        lr: float = 1e-3,
        antithetic: bool = False,
        generator: torch.Generator | None = None,
        nonfinite_fit: str = "raise",
        replay: nn.Module | None = None,
        report_after: bool = True,
        threads: ThreadsSpec = "auto",
    ) -> None:
        super().__init__()
        self.replay = replay  # a ReplayBuffer (diffbypass.replay), or None
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.sampler = NoiseSampler(sigma, samples, antithetic=antithetic, generator=generator)
        self.fit_steps = int_at_least("fit_steps", fit_steps, 0)
        self.fit_loss: FitLoss = make_fit_loss(fit_loss)
        # the default Adam is built at its first use (a fit, state_dict()): predicting never is
        self._optimizer = make_optimizer(model, optimizer, positive_number("lr", lr))
        self._optimizer_state: dict[str, Any] | None = None  # loaded before it was built
        self.nonfinite_fit = one_of("nonfinite_fit", nonfinite_fit, ("raise", "skip"))
        self.report_after = instance_of("report_after", report_after, bool)
        self.threads = threads_spec(threads)
        self._init_telemetry()
        # per-item input shape -> the model's per-item output shape (found at the first call)
        self._out_shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
        self._shared = False  # under DDP: was rank 0's state broadcast (at the first fit)?
        self._freeze = Freezer()  # the predictions inside _frozen, from any thread

    # ------------------------------------------------------------------ public
    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The optimiser of the model's fit (the default Adam is built at the first access)."""
        if isinstance(self._optimizer, LazyAdam):
            optimizer = self._optimizer.get()
            if self._optimizer_state is not None:
                optimizer.load_state_dict(self._optimizer_state)
            self._optimizer, self._optimizer_state = optimizer, None
        return self._optimizer

    def predict(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        """``model(x)`` with gradients to ``x`` only (the parameters are used detached); for a
        black box with several arguments ``model(x, *args, **kwargs)``, differentiable in them."""
        if args or kwargs or not isinstance(x, Tensor):
            with num_threads(self.threads if isinstance(self.threads, int) else None):
                outs = self._predict_call(Packed((x, *args), kwargs))
            return outs if len(outs) > 1 else outs[0]
        threads = self._threads(len(x))
        if threads is not None and x.requires_grad and torch.is_grad_enabled():
            return ThreadedPredict.apply(x, self._predict, threads)
        with num_threads(threads):
            return self._predict(x)

    def _threads(self, rows: int) -> int | None:
        return threads_for(self.threads, self.model, rows)

    def _predict(self, x: Tensor) -> Tensor:
        with self._frozen():
            return self.model(self._cast(x))

    def _frozen(self) -> Any:
        """The model's parameters detached inside (:class:`._frozen.Freezer`, thread-safe)."""
        return self._freeze.frozen(self.model)

    # ------------------------------------------------------------------ Estimator
    def _fitting(self) -> bool:
        """Does this forward fit the model (training mode with fit steps)?"""
        fitting = self.training and self.fit_steps > 0
        if fitting and torch.is_inference_mode_enabled():
            raise RuntimeError(
                "Surrogate is in training mode, where every forward pass fits the surrogate "
                "(which needs autograd), but torch.inference_mode() is active; call .eval() on "
                "the model (or the Bypass) for inference, or use torch.no_grad() instead"
            )
        return fitting

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        fitting = self._fitting()
        y = blackbox(x, what="forward")
        self.fit_loss.check(self._out_shape(x), y, "forward")
        if fitting:
            self.fit(blackbox, x)
        return y

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        with torch.enable_grad(), num_threads(self._threads(len(x))):
            xx = x.detach().requires_grad_(True)
            out = self._predict(xx)
            (grad_x,) = torch.autograd.grad(out, xx, grad_y.to(out.dtype))
        return grad_x

    # ------------------------------------------------------------------ fitting
    def fit(self, blackbox: Evaluator, x: Tensor) -> FitStats:
        """Sample around ``x``, evaluate ``fn`` there and fit the model; returns the stats."""
        self._share()
        xs, _ = self.sampler.perturb(x)
        ys, valid = blackbox.many(xs, what="surrogate fit samples")
        inputs, targets = self._cast(xs.flatten(0, 1)), ys.flatten(0, 1)
        dropped = 0
        if valid is not None:
            keep = valid.flatten()
            dropped = int((~keep).sum())
            inputs, targets = inputs[keep], targets[keep]
        if len(inputs) == 0:
            raise BlackBoxError("every perturbed sample of the surrogate fit was NaN/inf")
        self.fit_loss.check(self._out_shape(x), targets, "surrogate fit samples")
        fresh = len(inputs)  # agreement is measured on these; replayed pairs only add fit data
        if self.replay is not None:
            inputs, targets = self.replay.extend(inputs, targets, near=x)
        return fit_loop(
            self, lambda: self.model(inputs), lambda pred: self.fit_loss(pred, targets),
            lambda pred: self.fit_loss.agreement(pred.detach()[:fresh], targets[:fresh]),
            lambda: self.fit_loss.agreement(self.model(inputs[:fresh]), targets[:fresh]),
            threads=self._threads(len(inputs)), samples=fresh, dropped=dropped)

    def _share(self) -> None:
        """Under DDP, copy rank 0's model and optimiser state to every rank at the first fit."""
        if not self._shared and distributed.active():
            distributed.broadcast_module(self.model, self.optimizer)
            self._shared = True

    def _cast(self, x: Tensor) -> Tensor:
        """``x`` in the model's (floating) dtype; autograd casts the gradient back."""
        dtype = next(self.model.parameters()).dtype
        return x if x.dtype == dtype or not dtype.is_floating_point else x.to(dtype)

    def _out_shape(self, x: Tensor) -> tuple[int, ...]:
        """The model's per-item output shape for inputs shaped like ``x`` (cached per shape)."""
        key = tuple(x.shape[1:])
        if key not in self._out_shapes:
            with torch.no_grad():
                self._out_shapes[key] = tuple(self.predict(x[:1].detach()).shape[1:])
        return self._out_shapes[key]

    # ------------------------------------------------------------------ state
    def get_extra_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "sampler": self.sampler.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        # a copy, as Module.load_state_dict copies parameters: the optimiser state (e.g. Adam's
        # moments) must not stay shared with the layer the state came from
        if isinstance(self._optimizer, LazyAdam):  # loaded when the Adam is built
            self._optimizer.check_state(state["optimizer"])
            self._optimizer_state = copy.deepcopy(state["optimizer"])
        else:
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.sampler.load_state_dict(state["sampler"])

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, fit_steps={self.fit_steps}, "
            f"fit_loss={self.fit_loss.name!r}"
        )
