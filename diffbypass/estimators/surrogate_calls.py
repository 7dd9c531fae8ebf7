"""The surrogate of a black box with several arguments or outputs (a part of
:class:`~diffbypass.Surrogate`).

The user's network takes the same arguments as ``fn`` (non-tensor ones included) and returns
``fn``'s outputs (a tuple for a tuple). The noise-exploration sampler perturbs every
differentiable argument with its own ``sigma``, shared ones once per sample; the network is fitted
on all perturbed calls. Without a perturbed shared argument the ``S`` samples are one flat batch
of ``S * B`` items, as for one input; with one, the network is called once per sample, as ``fn``
is (it sees a shared argument as given). The fit loss is summed over the outputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from diffbypass.arguments import Call, Packed, as_outputs
from diffbypass.base import BlackBoxError
from diffbypass.estimators._fit_loop import fit_loop
from diffbypass.estimators._threads import num_threads
from diffbypass.stats import FitStats

__all__: list[str] = []


class SurrogateCalls:
    """``output_call`` / ``vjp_call`` / ``predict`` of :class:`~diffbypass.Surrogate`."""

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        fitting = self._fitting()  # type: ignore[attr-defined]
        if self.replay is not None:  # type: ignore[attr-defined]
            raise TypeError(
                "Surrogate(replay=ReplayBuffer(...)) stores one input tensor per pair and cannot "
                f"store the arguments {tuple(call.names)}; leave replay out for a black box with "
                "several arguments or outputs"
            )
        ys = blackbox.call(call)
        preds = self._predict_call(call.pack(call.leaves))
        if len(preds) != len(ys):
            raise ValueError(f"the surrogate model returned {len(preds)} output(s) where fn "
                             f"returned {len(ys)}; it must return fn's outputs")  # fmt: skip
        for k in self._fitted(ys):
            self.fit_loss.check(tuple(preds[k].shape[1:]), ys[k], f"forward, output {k}")  # type: ignore[attr-defined]
        if fitting:
            self.fit_call(blackbox, call)
        return ys

    def _fitted(self, ys: tuple[Tensor, ...]) -> list[int]:
        """The outputs the model is fitted to: all with ``fit_loss="ce"`` (class indices), else
        the real ones (integer outputs carry no gradient and are left out of the fit)."""
        if self.fit_loss.name == "ce":  # type: ignore[attr-defined]
            return list(range(len(ys)))
        return [k for k, y in enumerate(ys) if y.is_floating_point()]

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor | None, ...]) -> list[Tensor]:  # fmt: skip
        """The model's vector-Jacobian product for every differentiable argument (a shared
        argument's summed over the batch by autograd); ``fn`` is not called."""
        with torch.enable_grad(), num_threads(self._threads(call.batch)):  # type: ignore[attr-defined]
            leaves = [t.detach().requires_grad_(i in call.diff) for i, t in enumerate(call.leaves)]
            outs = self._predict_call(call.pack(leaves))
            pairs = [(o, g) for o, g in zip(outs, grad_ys) if g is not None and o.requires_grad]
            wrt = [leaves[i] for i in call.diff]
            found = torch.autograd.grad([o for o, _ in pairs], wrt, [g.to(o.dtype) for o, g in pairs],
                                        allow_unused=True) if pairs else [None] * len(wrt)  # fmt: skip
        return [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, found)]

    def _predict_call(self, packed: Packed) -> tuple[Tensor, ...]:
        """The model on packed arguments (its parameters detached), as a tuple of outputs."""
        cast = self._cast_packed(packed)
        with self._frozen():  # type: ignore[attr-defined]
            return as_outputs(cast(self.model))

    def _cast_packed(self, packed: Packed) -> Packed:
        """``packed`` with every floating tensor in the model's dtype."""
        return Packed(pytree.tree_map(self._cast_float, packed.args),
                      pytree.tree_map(self._cast_float, packed.kwargs))

    def _cast_float(self, value: Any) -> Any:
        """A floating tensor in the model's dtype; anything else (integer indices) as it is."""
        return self._cast(value) if isinstance(value, Tensor) and value.is_floating_point() else value  # type: ignore[attr-defined]

    def fit_call(self, blackbox: Any, call: Call) -> FitStats:
        """Sample around the call's arguments, evaluate ``fn`` there and fit the model."""
        self._share()  # type: ignore[attr-defined]
        perturbed: list[Tensor | None] = [None] * len(call.leaves)
        for i in call.diff:
            leaf = call.leaves[i]
            perturbed[i] = leaf.unsqueeze(0) + self.sampler.scale_of(call, i) * self.sampler.noise(leaf)  # type: ignore[attr-defined]
        outs, valid = blackbox.many_calls(call, perturbed, what="surrogate fit samples")
        s, b, fitted = outs[0].shape[0], call.batch, self._fitted(outs)
        # the model's inputs: cast once here, not per group (fn was called with the originals)
        leaves = [self._cast_float(leaf) for leaf in call.leaves]
        perturbed = [None if p is None else self._cast_float(p) for p in perturbed]
        groups = []  # (argument leaves, targets, kept rows)
        if not any(p is not None and sh for p, sh in zip(perturbed, call.shared)):
            flat = [leaf if sh else (p if p is not None else leaf.unsqueeze(0).expand(s, *leaf.shape))
                    .reshape(s * b, *leaf.shape[1:]) for leaf, p, sh in zip(leaves, perturbed, call.shared)]  # fmt: skip
            keep = None if valid is None else valid.flatten()
            groups.append((flat, [outs[k].flatten(0, 1) for k in fitted], keep))
        else:
            for i in range(s):
                one = [leaf if p is None else p[i] for leaf, p in zip(leaves, perturbed)]
                groups.append((one, [outs[k][i] for k in fitted], None if valid is None else valid[i]))
        data = []
        for args, targets, keep in groups:
            if keep is not None:
                args = [t if sh else t[keep] for t, sh in zip(args, call.shared)]
                targets = [y[keep] for y in targets]
            if len(targets[0]):
                data.append((call.pack(args), targets))
        if not data:
            raise BlackBoxError("every perturbed sample of the surrogate fit was NaN/inf")
        fresh = sum(len(t[0]) for _, t in data)
        return self._fit_groups(data, fitted, fresh, s * b - fresh)

    def _fit_groups(self, data: list[tuple[Packed, list[Tensor]]], fitted: list[int], fresh: int,
                    dropped: int) -> FitStats:
        """The fit loop (:func:`~diffbypass.estimators._fit_loop.fit_loop`) on every group."""
        loss_fn = self.fit_loss  # type: ignore[attr-defined]

        def predictions() -> list[tuple[Tensor, ...]]:
            return [tuple(as_outputs(packed(self.model))[k] for k in fitted) for packed, _ in data]  # type: ignore[attr-defined]

        def agreement(preds: list[tuple[Tensor, ...]]) -> float:
            parts = [loss_fn.agreement(torch.cat([p[k].detach() for p in preds]),
                                       torch.cat([t[k] for _, t in data])) for k in range(len(fitted))]  # fmt: skip
            return float(sum(parts) / len(parts))

        def loss_of(preds: list[tuple[Tensor, ...]]) -> Tensor:
            return sum(loss_fn(p[k], t[k]) for p, (_, t) in zip(preds, data)  # type: ignore[return-value]
                       for k in range(len(t))) / len(data)  # fmt: skip

        return fit_loop(self, predictions, loss_of, agreement, lambda: agreement(predictions()),  # type: ignore[arg-type]
                        threads=self._threads(fresh), samples=fresh, dropped=dropped)  # type: ignore[attr-defined]
