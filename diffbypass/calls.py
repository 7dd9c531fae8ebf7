"""Evaluating a black box with several arguments (a :class:`~diffbypass.arguments.Call`): the
forward call and many perturbed calls, chunked and dispatched like single inputs.

A part of :class:`~diffbypass.BlackBox` (it uses its chunking, dispatch and checks). Perturbed
*batched* leaves ``(S, B, ...)`` are evaluated as one flat batch of ``S * B`` items, as for one
input; once a *shared* leaf is perturbed, each sample ``s`` is its own call (``fn`` sees a shared
argument as given, so the items of one call must share its value), each split by ``max_batch``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from diffbypass.arguments import Call, Packed
from diffbypass.base import BlackBoxError

__all__ = ["CallEvaluation"]


class CallEvaluation:
    """``BlackBox.call`` and ``BlackBox.many_calls``: ``fn`` on a :class:`Call`'s arguments."""

    max_batch: int | None
    executor: Any
    tuple_output: bool

    def call(self, call: Call, leaves: Sequence[Tensor] | None = None, *,
             what: str = "forward") -> tuple[Tensor, ...]:  # fmt: skip
        """``fn`` on the call's arguments (or with its tensor leaves replaced by ``leaves``):
        its outputs, each ``(B, ...)``, checked and without NaN/inf."""
        leaves = call.leaves if leaves is None else list(leaves)
        size = self.max_batch or call.batch
        ys = self._evaluate_calls(call, call.chunks(leaves, size), call.batch, size, what)
        for k, y in enumerate(ys):
            self._check_finite(y, what if len(ys) == 1 else f"{what}, output {k}")  # type: ignore[attr-defined]
        return ys

    def many_calls(
        self, call: Call, perturbed: Sequence[Tensor | None], *, what: str
    ) -> tuple[tuple[Tensor, ...], Tensor | None]:
        """``fn`` at ``S`` perturbed copies of the call's arguments.

        Args:
            call: the call.
            perturbed: per leaf, its ``S`` perturbed values (batched leaf ``(S, B, ...)``,
                shared leaf ``(S, ...)``), or ``None`` for a leaf left as it is.
            what: names the evaluation in errors.

        Returns:
            ``(ys, valid)``: the outputs, each ``(S, B, ...)``, and the mask ``(S, B)`` of usable
            samples (``None``: all), as :meth:`~diffbypass.BlackBox.many`.
        """
        s = next(p.shape[0] for p in perturbed if p is not None)
        b = call.batch
        if not any(p is not None and sh for p, sh in zip(perturbed, call.shared)):
            flat = []
            for leaf, p, sh in zip(call.leaves, perturbed, call.shared):
                if sh:
                    flat.append(leaf)
                elif p is None:
                    flat.append(leaf.unsqueeze(0).expand(s, *leaf.shape).reshape(s * b, *leaf.shape[1:]))
                else:
                    flat.append(p.detach().reshape(s * b, *p.shape[2:]))
            if self.max_batch is not None:
                size = self.max_batch
            else:
                size = b if self.executor is not None else s * b
            chunks = call.chunks(flat, size)
        else:
            size, chunks = self.max_batch or b, []
            for i in range(s):
                one = [t if p is None else p[i].detach() for t, p in zip(call.leaves, perturbed)]
                chunks += call.chunks(one, size)
        outs = self._evaluate_calls(call, chunks, s * b, size, what)
        ys = tuple(y.reshape(s, b, *y.shape[1:]) for y in outs)
        return ys, self._valid(list(ys), what)  # type: ignore[attr-defined]

    def _evaluate_calls(
        self, call: Call, chunks: list[Packed], total: int, size: int, what: str
    ) -> tuple[Tensor, ...]:
        from diffbypass.blackbox import Single, _to_outputs

        device = call.leaves[0].device
        outs = self._run(chunks, what, size, total=total, device=device, convert=_to_outputs)  # type: ignore[attr-defined]
        arity = len(outs[0])
        self.tuple_output = not isinstance(outs[0], Single)
        key = call.key()
        start = 0
        for i, (out, chunk) in enumerate(zip(outs, chunks)):
            where = self._where(what, i, size, len(chunks), total)  # type: ignore[attr-defined]
            if len(out) != arity:
                raise BlackBoxError(f"fn returned {len(out)} outputs in {where}; it returned "
                                    f"{arity} in the first chunk")  # fmt: skip
            n = _items(call, chunk)
            for k, y in enumerate(out):
                self._check_output(y, n, (key, k, arity), where)  # type: ignore[attr-defined]
            start += n
        return tuple(torch.cat([o[k] for o in outs]) if len(outs) > 1 else outs[0][k]
                     for k in range(arity))  # fmt: skip


def _items(call: Call, chunk: Packed) -> int:
    """The number of batch items in a packed chunk (the leading size of its batched leaves)."""
    from torch.utils import _pytree as pytree

    leaves = [v for v in pytree.tree_leaves((chunk.args, chunk.kwargs)) if isinstance(v, Tensor)]
    return next(t.shape[0] for t, sh in zip(leaves, call.shared) if not sh)
