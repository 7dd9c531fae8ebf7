"""Evaluating a black box: conversion, checks, chunking and executors.

Every call of the user's function goes through :class:`BlackBox`. It

* hands ``fn`` a detached tensor (``fn`` never sees autograd) and converts what comes back
  (tensor or NumPy array) to a tensor on the input's device;
* checks the output's leading dimension, and that its trailing shape and dtype kind stay the same
  from call to call;
* evaluates many perturbed inputs ``(S, B, ...)`` as one flat batch, in chunks of ``max_batch``,
  optionally on a :class:`concurrent.futures.Executor` (threads, processes, or a Dask cluster
  through ``client.get_executor()``);
* reports NaN/inf and exceptions with the evaluation that produced them.

Noise is always drawn before dispatch, so for a fixed seed results do not depend on the executor.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least, one_of
from diffbypass.base import BlackBoxFn

__all__ = ["BlackBox", "BlackBoxError"]


class BlackBoxError(RuntimeError):
    """The black box raised, or returned something unusable; the message says which evaluation."""


def _call(fn: BlackBoxFn, x: Tensor) -> Any:
    """Module-level so that process pools can pickle it."""
    return fn(x)


def _to_tensor(out: Any, device: torch.device, what: str) -> Tensor:
    if isinstance(out, Tensor):
        return out.detach().to(device)
    if isinstance(out, np.ndarray) or np.isscalar(out):
        arr = np.asarray(out)
        if arr.dtype == object:
            raise BlackBoxError(f"fn returned an object array in {what}; expected numbers")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(device)
    raise BlackBoxError(
        f"fn must return a torch.Tensor or numpy.ndarray; got {type(out).__name__} in {what}"
    )


class BlackBox:
    """A black-box function plus the policy for evaluating it.

    Args:
        fn: the function; see :data:`~diffbypass.base.BlackBoxFn`.
        max_batch: largest number of inputs passed to one ``fn`` call (``None``: all at once).
        executor: a :class:`concurrent.futures.Executor` to run the chunks on (``None``: in the
            calling thread). With an executor and no ``max_batch``, each of the ``S`` perturbation
            sets becomes one task.
        nonfinite: ``"raise"`` (default) to fail on NaN/inf, or ``"drop"`` to leave out
            perturbed samples whose output has NaN/inf (the estimators then average over the
            rest). The output at the unperturbed input is always checked and never dropped.
    """

    def __init__(
        self,
        fn: BlackBoxFn,
        *,
        max_batch: int | None = None,
        executor: Executor | None = None,
        nonfinite: str = "raise",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable; got {type(fn).__name__}")
        if max_batch is not None:
            max_batch = int_at_least("max_batch", max_batch, 1)
        if executor is not None and not isinstance(executor, Executor):
            if not (hasattr(executor, "submit") and callable(executor.submit)):
                raise TypeError(
                    "executor must be a concurrent.futures.Executor (or have .submit); "
                    f"got {type(executor).__name__}"
                )
        self.fn = fn
        self.max_batch = max_batch
        self.executor = executor
        self.nonfinite = one_of("nonfinite", nonfinite, ("raise", "drop"))
        self.calls = 0  #: number of ``fn`` invocations so far (tests and telemetry read it)
        self.instances = 0  #: number of inputs (batch items) ``fn`` evaluated, over all calls
        # per input item shape: (output item shape, floating?) seen at the first call
        self._signatures: dict[tuple[int, ...], tuple[tuple[int, ...], bool]] = {}

    # ------------------------------------------------------------------ single batch
    def __call__(self, x: Tensor, *, what: str = "forward") -> Tensor:
        """Evaluate ``fn`` on the batch ``x`` of shape ``(B, ...)``; the output is always checked."""
        if x.dim() == 0:
            raise ValueError("x must have a leading batch dimension; got a 0-d tensor")
        y = self._run([x.detach()], what)[0]
        self._check(y, x, what)
        bad = ~torch.isfinite(y) if y.is_floating_point() else None
        if bad is not None and bool(bad.any()):
            rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
            raise BlackBoxError(
                f"fn returned {int(bad.sum())} NaN/inf value(s) in {what} "
                f"(batch items {rows[:10]}{'...' if len(rows) > 10 else ''})"
            )
        return y

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
        chunks = [flat[i : i + size] for i in range(0, s * b, size)]
        outs = self._run(chunks, what, chunk_size=size)
        for i, out in enumerate(outs):
            self._check(out, chunks[i], f"{what} (chunk {i})")
        ys = torch.cat(outs).reshape(s, b, *outs[0].shape[1:])
        if not ys.is_floating_point():
            return ys, None
        bad = ~torch.isfinite(ys.reshape(s, b, -1)).all(dim=2)
        if not bool(bad.any()):
            return ys, None
        where = bad.nonzero().tolist()
        if self.nonfinite == "raise":
            count = int((~torch.isfinite(ys)).sum())
            raise BlackBoxError(
                f"fn returned {count} NaN/inf value(s) in {what}: {len(where)} of {s * b} "
                f"perturbed samples, first (sample, batch item) = {where[:5]}; pass "
                "nonfinite='drop' to Bypass to leave such samples out"
            )
        return ys, ~bad

    # ------------------------------------------------------------------ internals
    def _run(self, chunks: list[Tensor], what: str, chunk_size: int = 0) -> list[Tensor]:
        device = chunks[0].device
        self.calls += len(chunks)
        self.instances += sum(int(c.shape[0]) for c in chunks)
        if self.executor is None:
            results = []
            for i, c in enumerate(chunks):
                try:
                    results.append(_call(self.fn, c))
                except Exception as exc:  # re-raised with the evaluation that failed
                    raise BlackBoxError(self._where(what, i, chunk_size, len(chunks))) from exc
        else:
            futures = [self.executor.submit(_call, self.fn, c) for c in chunks]
            results = []
            for i, fut in enumerate(futures):
                try:
                    results.append(fut.result())
                except Exception as exc:
                    raise BlackBoxError(self._where(what, i, chunk_size, len(chunks))) from exc
        return [_to_tensor(r, device, what) for r in results]

    @staticmethod
    def _where(what: str, i: int, size: int, n: int) -> str:
        if n == 1:
            return f"fn raised in {what}"
        return f"fn raised in {what}, chunk {i + 1} of {n} (flat samples {i * size}..{(i + 1) * size - 1})"

    def _check(self, y: Tensor, x: Tensor, what: str) -> None:
        batch = x.shape[0]
        if y.dim() == 0 or y.shape[0] != batch:
            raise BlackBoxError(
                f"fn must return an output with leading (batch) dimension {batch}; "
                f"got shape {tuple(y.shape)} in {what}"
            )
        if y.dtype == torch.bool or y.is_complex():
            raise BlackBoxError(f"fn must return real numbers or integer indices; got {y.dtype}")
        signature = (tuple(y.shape[1:]), y.is_floating_point())
        first = self._signatures.setdefault(tuple(x.shape[1:]), signature)
        if signature != first:
            kind = lambda f: "floating" if f else "integer"  # noqa: E731
            raise BlackBoxError(
                f"fn's output changed between calls: first per-item shape {first[0]} "
                f"({kind(first[1])}), now {signature[0]} ({kind(signature[1])}) in {what}"
            )

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        return f"BlackBox({name}, max_batch={self.max_batch}, nonfinite={self.nonfinite!r})"

