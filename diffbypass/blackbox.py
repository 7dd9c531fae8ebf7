"""Evaluating a black box: conversion, checks, chunking, executors, timeouts and retries.

Every call of the user's function goes through :class:`BlackBox`. It

* hands ``fn`` a detached *copy* of its input in every call (``fn`` never sees autograd, and a
  black box that writes into its input cannot change the caller's tensors), and copies what
  comes back (tensor or NumPy array) into a tensor on the input's device;
* checks the output's leading dimension, and that its trailing shape and dtype kind stay the same
  from call to call;
* evaluates many perturbed inputs ``(S, B, ...)`` as one flat batch, in chunks of ``max_batch``,
  optionally on a :class:`concurrent.futures.Executor` (threads, processes, or a Dask cluster
  through ``client.get_executor()``), with a ``timeout`` per chunk and ``retries``;
* reports NaN/inf and exceptions with the evaluation (and the chunk) that produced them.

Noise is always drawn before dispatch, so for a fixed seed results do not depend on the executor,
nor on retries.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from diffbypass._dispatch import Dispatcher, check_picklable, fn_name
from diffbypass.base import BlackBoxError, BlackBoxFn
from diffbypass.calls import CallEvaluation
from diffbypass.validation import int_at_least, one_of, positive_number

__all__ = ["BlackBox", "BlackBoxError"]


def _to_tensor(out: Any, device: torch.device, what: str) -> Tensor:
    """A copy of ``out`` as a tensor on ``device`` (fn may reuse its output buffer)."""
    if isinstance(out, Tensor):
        return out.detach().to(device=device, copy=True)
    if isinstance(out, tuple):
        raise TupleOutput(f"fn returned a tuple of {len(out)} outputs in {what}")
    if isinstance(out, np.ma.MaskedArray):
        raise BlackBoxError(
            f"fn returned a NumPy masked array ({int(np.ma.count_masked(out))} masked value(s)) in "
            f"{what}; its mask would be ignored. Return out.filled(np.nan) to mark them as NaN "
            "(nonfinite='drop' leaves such perturbed samples out), or a plain array"
        )
    if isinstance(out, np.ndarray) or np.isscalar(out):
        arr = np.asarray(out)
        if arr.ndim == 0:
            raise BlackBoxError(
                f"fn returned a scalar ({type(out).__name__} {str(out)[:40]!r}) in {what}; "
                "expected an output with a leading batch dimension"
            )
        if arr.dtype.kind not in "biufc":
            raise BlackBoxError(
                f"fn returned a NumPy array of dtype {arr.dtype} and shape {arr.shape} in {what}; "
                "expected numbers"
            )
        return torch.from_numpy(np.array(arr, order="C", copy=True)).to(device)
    raise BlackBoxError(
        f"fn must return a torch.Tensor or numpy.ndarray; got {type(out).__name__} in {what}"
    )


class TupleOutput(BlackBoxError):
    """fn returned a tuple where one tensor was expected (:class:`~diffbypass.Bypass` then takes
    its path for several outputs)."""


class Single(tuple):
    """The one output of an ``fn`` that returned a tensor, not a tuple."""


def _to_outputs(out: Any, device: torch.device, what: str) -> tuple[Tensor, ...]:
    """fn's output(s) as a tuple of tensors (a copy, on ``device``); a :class:`Single` when
    ``fn`` returned one tensor or array."""
    if isinstance(out, tuple):  # several outputs (a list is not: it is refused as before)
        if not out:
            raise BlackBoxError(f"fn returned an empty tuple in {what}")
        return tuple(_to_tensor(o, device, f"{what}, output {k}") for k, o in enumerate(out))
    return Single((_to_tensor(out, device, what),))


class BlackBox(CallEvaluation):
    """A black-box function plus the policy for evaluating it.

    Args:
        fn: the function; see :data:`~diffbypass.base.BlackBoxFn`.
        max_batch: largest number of inputs passed to one ``fn`` call, in the forward pass and
            for the perturbed samples alike (``None``: all at once).
        executor: a :class:`concurrent.futures.Executor` to run the chunks on (``None``: in the
            calling thread). With an executor and no ``max_batch``, the forward batch and each
            of the ``S`` perturbation sets become one task each; with ``max_batch``, every chunk
            is a task (the forward batch too), so more workers than ``S + 1`` can share a step.
        nonfinite: ``"raise"`` (default) to fail on NaN/inf, or ``"drop"`` to leave out
            perturbed samples whose output has NaN/inf (the estimators then average over the
            rest). The output at the unperturbed input is always checked and never dropped.
        timeout: seconds to wait for each chunk's result on the ``executor`` (counted from when
            the result is first waited for); a chunk that takes longer is a failed attempt.
            Needs an executor (a call in the calling thread cannot be interrupted). Only a
            :class:`~diffbypass.KillablePool` ends the hung call (its worker process is killed
            and replaced); on threads, process pools and Dask it runs on and holds its worker
            (see :doc:`/reliability`).
        retries: how many times a failed chunk (fn raised, timed out, or its worker was lost) is
            attempted again before :class:`BlackBoxError`. ``fn`` raising ``SystemExit`` is a
            failure like any other (it does not end the calling process). The inputs are the same, so for a
            deterministic ``fn`` the result is identical to a fault-free run. A retry on a
            broken process pool (a worker died) runs in the calling thread.

    Attributes:
        calls: ``fn`` invocations so far (chunks submitted; retries not included).
        instances: inputs (batch items) ``fn`` evaluated so far, over all calls.
        retried: attempts repeated after a failure so far.
    """

    def __init__(
        self,
        fn: BlackBoxFn,
        *,
        max_batch: int | None = None,
        executor: Executor | None = None,
        nonfinite: str = "raise",
        timeout: float | None = None,
        retries: int = 0,
    ) -> None:
        if max_batch is not None:
            max_batch = int_at_least("max_batch", max_batch, 1)
        if executor is not None and not isinstance(executor, Executor):
            if not (hasattr(executor, "submit") and callable(executor.submit)):
                raise TypeError(
                    "executor must be a concurrent.futures.Executor (or have .submit); "
                    f"got {type(executor).__name__}"
                )
        if timeout is not None:
            timeout = positive_number("timeout", timeout)
            if executor is None:
                raise ValueError(
                    "timeout needs an executor (a call in the calling thread cannot be "
                    "interrupted); pass e.g. executor=ThreadPoolExecutor(1)"
                )
        self.max_batch = max_batch
        self.executor = executor
        self.nonfinite = one_of("nonfinite", nonfinite, ("raise", "drop"))
        self.timeout = timeout
        self.retries = int_at_least("retries", retries, 0)
        self._dispatch = Dispatcher(fn, executor, timeout, self.retries)
        self.fn = fn  # checked by the setter
        self.calls = 0
        self.instances = 0
        #: whether fn returned a tuple of outputs at its last call with several arguments
        self.tuple_output = False
        # per input item shape: (output item shape, floating?) seen at the first call
        self._signatures: dict[Any, tuple[tuple[int, ...], bool]] = {}

    @property
    def fn(self) -> BlackBoxFn:
        """The function. Assigning another one (e.g. a timed wrapper) takes effect at the next
        call; it is checked as at construction."""
        return self._dispatch.fn

    @fn.setter
    def fn(self, fn: BlackBoxFn) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}")
        check_picklable(fn, self.executor)
        self._dispatch.fn = fn

    # ------------------------------------------------------------------ single batch
    def __call__(self, x: Tensor, *, what: str = "forward") -> Tensor:
        """Evaluate ``fn`` on the batch ``x`` of shape ``(B, ...)``; the output is always checked."""
        if x.dim() == 0:
            raise ValueError("x must have a leading batch dimension; got a 0-d tensor")
        y = self._evaluate(x.detach(), self.max_batch or len(x), what)
        self._check_finite(y, what)
        return y

    @staticmethod
    def _check_finite(y: Tensor, what: str) -> None:
        bad = ~torch.isfinite(y) if y.is_floating_point() else None
        if bad is not None and bool(bad.any()):
            rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
            raise BlackBoxError(
                f"fn returned {int(bad.sum())} NaN/inf value(s) in {what} "
                f"(batch items {rows[:10]}{'...' if len(rows) > 10 else ''})"
            )

    # ------------------------------------------------------------------ many perturbed copies
    def many(self, xs: Tensor, *, what: str) -> tuple[Tensor, Tensor | None]:
        """Evaluate ``fn`` on ``xs`` of shape ``(S, B, ...)``.

        Returns:
            ``(ys, valid)``: outputs ``(S, B, ...)`` and, when ``nonfinite="drop"`` removed
            something, a boolean mask ``(S, B)`` of usable samples (else ``None``).
        """
        s, b = xs.shape[0], xs.shape[1]
        flat = xs.detach().reshape(s * b, *xs.shape[2:])
        if self.max_batch is not None:
            size = self.max_batch
        elif self.executor is not None:
            size = b
        else:
            size = s * b
        out = self._evaluate(flat, size, what)
        ys = out.reshape(s, b, *out.shape[1:])
        return ys, self._valid([ys], what)

    def _valid(self, ys: list[Tensor], what: str) -> Tensor | None:
        """The mask ``(S, B)`` of samples without NaN/inf in any real output (``None``: all are
        usable); with ``nonfinite="raise"`` a NaN/inf is an error."""
        real = [y for y in ys if y.is_floating_point()]
        if not real:
            return None
        s, b = real[0].shape[0], real[0].shape[1]
        bad = ~torch.isfinite(real[0].reshape(s, b, -1)).all(dim=2)
        for y in real[1:]:
            bad |= ~torch.isfinite(y.reshape(s, b, -1)).all(dim=2)
        if not bool(bad.any()):
            return None
        where = bad.nonzero().tolist()
        if self.nonfinite == "raise":
            count = sum(int((~torch.isfinite(y)).sum()) for y in real)
            raise BlackBoxError(
                f"fn returned {count} NaN/inf value(s) in {what}: {len(where)} of {s * b} "
                f"perturbed samples, first (sample, batch item) = {where[:5]}; pass "
                "nonfinite='drop' to Bypass to leave such samples out"
            )
        return ~bad

    @property
    def retried(self) -> int:
        return self._dispatch.retried

    def policy(self) -> dict[str, Any]:
        """The evaluation settings, as keyword arguments of :class:`~diffbypass.Bypass`."""
        return {"max_batch": self.max_batch, "executor": self.executor,
                "nonfinite": self.nonfinite, "timeout": self.timeout, "retries": self.retries}  # fmt: skip

    # ------------------------------------------------------------------ internals
    def _evaluate(self, flat: Tensor, size: int, what: str) -> Tensor:
        """``fn`` on ``flat`` in chunks of at most ``size`` inputs, each output checked."""
        size = max(size, 1)
        chunks = [flat[i : i + size] for i in range(0, len(flat), size)] or [flat]
        outs = self._run(chunks, what, chunk_size=size)
        for i, out in enumerate(outs):
            self._check(out, chunks[i], self._where(what, i, size, len(chunks), len(flat)))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def _run(
        self, chunks: list[Any], what: str, chunk_size: int = 0, *, total: int | None = None,
        device: torch.device | None = None, convert: Callable[..., Any] = None,  # type: ignore[assignment]
    ) -> list[Any]:
        device = chunks[0].device if device is None else device
        total = sum(len(c) for c in chunks) if total is None else total
        convert = convert or _to_tensor
        self.calls += len(chunks)
        self.instances += total
        where = lambda i: self._where(what, i, chunk_size, len(chunks), total)  # noqa: E731
        return [convert(r, device, where(i)) for i, r in enumerate(self._dispatch.run(chunks, where))]

    @staticmethod
    def _where(what: str, i: int, size: int, n: int, total: int) -> str:
        """``what``, and for several chunks the 1-based chunk and its 1-based sample range."""
        if n == 1:
            return what
        last = min((i + 1) * size, total)
        return f"{what}, chunk {i + 1} of {n} (flat samples {i * size + 1}..{last} of {total})"

    def _check(self, y: Tensor, x: Tensor, what: str) -> None:
        self._check_output(y, x.shape[0], tuple(x.shape[1:]), what)

    def _check_output(self, y: Tensor, batch: int, key: Any, what: str) -> None:
        """``y`` has the leading dimension ``batch`` and the per-item shape and dtype kind seen at
        the first call with inputs of the same per-item shapes ``key``."""
        if y.dim() == 0 or y.shape[0] != batch:
            raise BlackBoxError(
                f"fn must return an output with leading (batch) dimension {batch}; "
                f"got shape {tuple(y.shape)} in {what}"
            )
        if y.dtype == torch.bool or y.is_complex():
            raise BlackBoxError(
                f"fn must return real numbers or integer indices; got {y.dtype} in {what}"
            )
        signature = (tuple(y.shape[1:]), y.is_floating_point())
        first = self._signatures.setdefault(key, signature)
        if signature != first:
            kind = lambda f: "floating" if f else "integer"  # noqa: E731
            raise BlackBoxError(
                f"fn's output changed between calls: first per-item shape {first[0]} "
                f"({kind(first[1])}), now {signature[0]} ({kind(signature[1])}) in {what}"
            )

    def __repr__(self) -> str:
        name = fn_name(self.fn)
        extra = "" if self.executor is None else f", timeout={self.timeout}, retries={self.retries}"
        return f"BlackBox({name}, max_batch={self.max_batch}, nonfinite={self.nonfinite!r}{extra})"

