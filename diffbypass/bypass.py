"""``Bypass``: a black box inside a PyTorch model, differentiated by a gradient estimator."""

from __future__ import annotations

from concurrent.futures import Executor
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from diffbypass.arguments import Arguments, Call
from diffbypass.base import BlackBoxFn, Estimator, Predictor, Reporter
from diffbypass.blackbox import BlackBox, TupleOutput

__all__ = ["Bypass"]


class _BypassFunction(torch.autograd.Function):
    """Forward: the estimator's ``output`` (== fn(x)); backward: the estimator's ``vjp``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, blackbox: BlackBox, estimator: Estimator) -> Tensor:
        y = estimator.output(blackbox, x)
        ctx.blackbox, ctx.estimator = blackbox, estimator
        ctx.save_for_backward(x, y)
        if not y.is_floating_point():
            ctx.mark_non_differentiable(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad_y: Tensor) -> tuple[Tensor | None, None, None]:
        x, y = ctx.saved_tensors
        with torch.no_grad():
            grad_x = ctx.estimator.vjp(ctx.blackbox, x, y, grad_y.to(y.dtype))
        if grad_x.shape != x.shape:
            raise RuntimeError(
                f"{type(ctx.estimator).__name__}.vjp returned shape {tuple(grad_x.shape)}; "
                f"expected the input's shape {tuple(x.shape)}"
            )
        return grad_x.to(x.dtype), None, None


class _CallFunction(torch.autograd.Function):
    """Several arguments or outputs: forward ``estimator.output_call``, backward ``vjp_call``."""

    @staticmethod
    def forward(ctx: Any, call: Call, blackbox: BlackBox, estimator: Estimator,
                *inputs: Tensor) -> tuple[Tensor, ...]:  # fmt: skip
        ys = tuple(estimator.output_call(blackbox, call))
        ctx.call, ctx.blackbox, ctx.estimator = call, blackbox, estimator
        ctx.save_for_backward(*ys)
        ctx.mark_non_differentiable(*[y for y in ys if not y.is_floating_point()])
        return ys

    @staticmethod
    def backward(ctx: Any, *grad_ys: Tensor | None) -> tuple[Tensor | None, ...]:
        call, ys = ctx.call, ctx.saved_tensors
        grads: list[Tensor | None] = [None] * len(call.leaves)
        if call.diff:
            grad_ys = tuple(
                None if not y.is_floating_point() else (torch.zeros_like(y) if g is None else g.to(y.dtype))
                for y, g in zip(ys, grad_ys)
            )
            with torch.no_grad():
                found = ctx.estimator.vjp_call(ctx.blackbox, call, ys, grad_ys)
            for i, g in zip(call.diff, found):
                leaf = call.leaves[i]
                if g.shape != leaf.shape:
                    raise RuntimeError(
                        f"{type(ctx.estimator).__name__}.vjp_call returned shape "
                        f"{tuple(g.shape)} for {call.names[i]}; expected {tuple(leaf.shape)}"
                    )
                grads[i] = g.to(leaf.dtype)
        return (None, None, None, *grads)


class Bypass(nn.Module):
    r"""Wrap a black box so that it can sit inside a model and be trained through.

    The forward pass returns ``fn(x)`` exactly, as a tensor on ``x``'s device (``fn`` may return
    a tensor or a NumPy array, floats or integer indices, and never sees autograd). The backward
    pass asks ``estimator`` for the input gradient.

    Args:
        fn: a function on a batch ``x`` of shape :math:`(B, \dots)` returning :math:`(B, \dots)`.
        estimator: a :class:`~diffbypass.Estimator`, e.g. :class:`~diffbypass.Surrogate` or
            :class:`~diffbypass.ES`.
        max_batch: evaluate at most this many inputs per ``fn`` call (bounds memory).
        executor: a :class:`concurrent.futures.Executor` (threads, processes, or a Dask
            ``client.get_executor()``) to evaluate perturbed inputs on.
        nonfinite: ``"raise"`` on NaN/inf from ``fn`` (default) or ``"drop"`` perturbed samples
            with NaN/inf (the output at ``x`` itself is always checked).
        timeout: seconds to wait for each chunk's result on the ``executor``; a hung evaluation
            becomes a :class:`~diffbypass.BlackBoxError` naming it (see :class:`~diffbypass.BlackBox`).
            To end the hung call itself, use a :class:`~diffbypass.KillablePool`.
        retries: attempts again for a chunk that failed (fn raised, timed out, its worker was
            lost); the result is the same as without the fault for a fixed seed.

    ``fn`` gets a copy of its input in every call, so a black box that writes into its input
    cannot change the model's tensors (see :doc:`/reliability`).

    Integer outputs (class indices) are returned as they are and carry no gradient; with a
    ``Surrogate(fit_loss="ce")`` put the loss on :meth:`predict` instead.

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, ES
        >>> layer = Bypass(torch.sign, ES(sigma=0.5, samples=256,
        ...                               generator=torch.Generator().manual_seed(0)))
        >>> x = torch.zeros(1, 3, requires_grad=True)
        >>> layer(x).sum().backward()
        >>> x.grad.shape  # close to 2 * phi(0) / 0.5 = 1.6 in each entry
        torch.Size([1, 3])
    """

    def __init__(
        self,
        fn: BlackBoxFn,
        estimator: Estimator,
        *,
        max_batch: int | None = None,
        executor: Executor | None = None,
        nonfinite: str = "raise",
        timeout: float | None = None,
        retries: int = 0,
        shared: Sequence[str | int] | str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(estimator, Estimator):
            raise TypeError(
                "estimator must be a diffbypass Estimator (Surrogate, ES, StraightThrough, "
                f"FiniteDifference, ...); got {type(estimator).__name__}"
            )
        self.blackbox = BlackBox(
            fn, max_batch=max_batch, executor=executor, nonfinite=nonfinite, timeout=timeout,
            retries=retries,
        )  # fmt: skip
        self.estimator = estimator
        self.arguments = Arguments(fn, shared)
        # the single-tensor path is taken until a call needs the general one
        self._general = bool(self.arguments.shared)

    @property
    def fn(self) -> BlackBoxFn:
        """The wrapped black-box function."""
        return self.blackbox.fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, differentiable in every floating-point tensor argument that
        requires grad (see :mod:`diffbypass.arguments`)."""
        if not self._general and len(args) == 1 and not kwargs and isinstance(args[0], Tensor):
            try:
                return self._forward_one(args[0])
            except TupleOutput:  # fn returns several outputs: the general path from now on
                self._general = True
        if not args and not kwargs:
            raise TypeError("the Bypass was called without arguments; pass fn's arguments")
        call = self.arguments.bind(args, kwargs)
        ys = _CallFunction.apply(call, self.blackbox, self.estimator, *call.inputs)
        return ys if self.blackbox.tuple_output else ys[0]

    def _forward_one(self, x: Tensor) -> Tensor:
        if x.dim() == 0:
            raise ValueError("x must have a leading batch dimension; got a 0-d tensor")
        if x.shape[0] == 0:
            raise ValueError(
                f"x must have at least one item in its batch dimension; got shape {tuple(x.shape)}"
            )
        return _BypassFunction.apply(x, self.blackbox, self.estimator)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """The estimator's differentiable prediction of ``fn`` at its arguments (surrogates
        only): the surrogate network called with the same arguments as ``fn``.

        Gradients flow to the arguments but not into the surrogate's parameters.
        """
        if not isinstance(self.estimator, Predictor):
            raise TypeError(
                f"{type(self.estimator).__name__} has no differentiable prediction; "
                "predict() needs an estimator that is a diffbypass.base.Predictor, e.g. Surrogate"
            )
        return self.estimator.predict(*args, **kwargs)

    @property
    def stats(self) -> Any:
        """Telemetry of the estimator's last update (a :class:`~diffbypass.base.Reporter`:
        :class:`~diffbypass.FitStats` of a Surrogate, :class:`~diffbypass.ESStats` of ES);
        ``None`` for estimators without telemetry."""
        return self.estimator.stats if isinstance(self.estimator, Reporter) else None

    def extra_repr(self) -> str:
        return repr(self.blackbox)
