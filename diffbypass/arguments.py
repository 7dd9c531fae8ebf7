r"""The arguments of a black box with several inputs: which are batched, which shared, which
get a gradient.

``Bypass(fn, estimator, shared=("theta",))`` builds an :class:`Arguments` spec from ``fn``'s
signature (checked with :func:`inspect.signature`); every call ``layer(x1, x2, ...)`` is bound to
it as a :class:`Call`:

* every **tensor** in an argument (a tensor, or a tuple/list/dict of tensors: a pytree, flattened
  with ``torch.utils._pytree``) is a *leaf*; anything else (ints, strings, config objects) passes
  to ``fn`` unchanged and gets no gradient;
* a leaf of a **batched** argument (the default) has the batch as its leading dimension; all
  batched leaves must agree on it. ``fn``'s output item :math:`b` may depend on item :math:`b` of
  the batched leaves only (and on the shared ones);
* a leaf of a **shared** argument (named in ``shared``) is seen by ``fn`` as given; its gradient
  is the sum over the batch, as autograd gives it for a broadcast parameter;
* a floating-point leaf that requires grad is *differentiable*: the estimators perturb it and
  return its gradient.

Explicit beats guessing: with more than one tensor argument ``Bypass`` needs ``shared=`` (an
empty tuple when every argument is batched), so a shared parameter whose length happens to equal
the batch size can never be taken for a batched one.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils import _pytree as pytree

from diffbypass.base import require_real

__all__ = ["Arguments", "Call", "Packed"]


class Packed:
    """The arguments of one ``fn`` call (picklable, for executors): ``fn(*args, **kwargs)``."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args, self.kwargs = args, kwargs

    def clone(self) -> Packed:
        """A copy whose tensors ``fn`` may write into without changing the caller's."""
        copy = lambda v: v.clone() if isinstance(v, Tensor) else v  # noqa: E731
        return Packed(pytree.tree_map(copy, self.args), pytree.tree_map(copy, self.kwargs))

    def __call__(self, fn: Callable[..., Any]) -> Any:
        return fn(*self.args, **self.kwargs)


class Arguments:
    """The argument spec of ``fn``: its parameter names and which arguments are shared.

    Args:
        fn: the black box.
        shared: names (or positions) of ``fn``'s parameters that are shared by the whole batch;
            ``None`` when not declared (then a call may have only one tensor argument).
    """

    def __init__(self, fn: Callable[..., Any], shared: Sequence[str | int] | None) -> None:
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without a signature
            self.signature = None
        self.declared = shared is not None
        names = [] if self.signature is None else list(self.signature.parameters)
        #: fn's parameter names, in order (empty when its signature cannot be read)
        self.parameters: tuple[str, ...] = tuple(names)
        if isinstance(shared, (str, int)):
            shared = (shared,)
        self.shared: tuple[str, ...] = ()
        for item in shared or ():
            if self.signature is None:
                raise ValueError(f"shared={tuple(shared or ())!r} needs fn's signature, and "
                                 "inspect.signature cannot read it; wrap fn in a def")  # fmt: skip
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise TypeError(f"shared must hold parameter names or positions; got {item!r}")
            if isinstance(item, int):
                if not 0 <= item < len(names):
                    raise ValueError(f"shared position {item} is out of range: fn takes "
                                     f"{len(names)} parameter(s) {tuple(names)}")  # fmt: skip
                item = names[item]
            elif item not in names:
                raise ValueError(f"shared names {item!r}, which is not a parameter of fn; "
                                 f"fn's parameters are {tuple(names)}")  # fmt: skip
            self.shared += (item,)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
        """The call ``fn(*args, **kwargs)`` as a :class:`Call` (validated)."""
        if self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"the Bypass was called with arguments fn does not accept: {exc}") from None
            # signature order, whatever order the caller used
            named, args, kwargs = list(bound.arguments.items()), bound.args, bound.kwargs
        else:
            named = [(f"arg{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
        return Call(self, tuple(args), dict(kwargs), named)


class Call:
    """One call of ``fn``, bound and flattened: the tensor *leaves* and how to rebuild the call.

    Attributes:
        inputs: every tensor in the arguments, as given (autograd tracks them).
        leaves: every tensor in the arguments, detached, in argument order.
        names: per leaf, its argument's name and path (``"x"``, ``"pair[1]"``, ``"cfg['w']"``).
        arguments: per leaf, its argument's name.
        shared: per leaf, whether its argument is shared.
        diff: the indices of the differentiable leaves (floating point, requiring grad).
        batch: the batch size (leading dimension of the batched leaves).
    """

    def __init__(self, spec: Arguments, args: tuple, kwargs: dict, named: list[tuple[str, Any]]):
        self.spec = spec
        self._tree = pytree.tree_flatten((args, kwargs))
        flat, self._treedef = self._tree
        self._tensor_at = [i for i, v in enumerate(flat) if isinstance(v, Tensor)]
        self.inputs = [flat[i] for i in self._tensor_at]
        self.leaves = [t.detach() for t in self.inputs]
        if not self.leaves:
            first = named[0][0] if named else "x"
            raise TypeError(
                f"{first} must be a torch.Tensor; got {type(named[0][1]).__name__ if named else 'nothing'}"
                ". fn needs at least one tensor argument with the batch as its leading dimension"
            )
        self._flat = flat
        self.names, self.arguments = [], []
        for name, value in named:
            paths = pytree.tree_flatten_with_path(value)[0] if not isinstance(value, Tensor) else [((), value)]
            for path, leaf in paths:
                if isinstance(leaf, Tensor):
                    self.names.append(name + pytree.keystr(path))
                    self.arguments.append(name)
        if len(self.names) != len(self.leaves):  # a *args/**kwargs parameter: name the leaves by index
            self.names = self.arguments = [f"arg{i}" for i in range(len(self.leaves))]
        tensor_args = sorted(set(self.arguments), key=self.arguments.index)
        if len(tensor_args) > 1 and not spec.declared:
            raise TypeError(
                f"fn was called with several tensor arguments {tuple(tensor_args)}: say which are "
                "shared by the whole batch, e.g. Bypass(fn, estimator, shared=("
                f"{tensor_args[-1]!r},)), or shared=() if every argument has the batch as its "
                "leading dimension"
            )
        self.shared = [a in spec.shared for a in self.arguments]
        self.diff = [i for i, t in enumerate(self.leaves)
                     if t.is_floating_point() and flat[self._tensor_at[i]].requires_grad]  # fmt: skip
        self.batch = self._batch_size()

    def _batch_size(self) -> int:
        sizes = {}
        for name, leaf, shared in zip(self.names, self.leaves, self.shared):
            if shared:
                continue
            if leaf.dim() == 0:
                raise ValueError(
                    f"argument {name} is batched and needs a leading batch dimension; got a 0-d "
                    f"tensor. If it is shared by the batch, pass shared=({name.split('[')[0]!r},)"
                )
            sizes[name] = leaf.shape[0]
        if not sizes:
            raise ValueError("fn was called without a batched tensor argument; at least one "
                             "argument must have the batch as its leading dimension")  # fmt: skip
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{n} has {s}" for n, s in sizes.items())
            raise ValueError(
                f"the batched arguments disagree on the batch size (leading dimension): {listed}. "
                "Pass the arguments shared by the whole batch in Bypass(..., shared=(...))"
            )
        batch = next(iter(sizes.values()))
        if batch == 0:
            raise ValueError("the batched arguments have an empty batch (leading dimension 0)")
        return batch

    def position(self, i: int) -> int:
        """The position of leaf ``i``'s argument among fn's parameters (or the call's arguments)."""
        arg = self.arguments[i]
        if arg in self.spec.parameters:
            return self.spec.parameters.index(arg)
        return sorted(set(self.arguments), key=self.arguments.index).index(arg)

    @property
    def differentiable(self) -> list[Tensor]:
        """The differentiable leaves."""
        return [self.leaves[i] for i in self.diff]

    def key(self) -> tuple[Any, ...]:
        """The per-item shapes of the leaves (batched: without the batch dimension)."""
        return tuple(tuple(t.shape[0 if s else 1:]) for t, s in zip(self.leaves, self.shared))

    def pack(self, leaves: Sequence[Tensor]) -> Packed:
        """The arguments with the tensor leaves replaced by ``leaves``."""
        flat = list(self._flat)
        for i, leaf in zip(self._tensor_at, leaves):
            flat[i] = leaf
        args, kwargs = pytree.tree_unflatten(flat, self._treedef)
        return Packed(tuple(args), dict(kwargs))

    def chunks(self, leaves: Sequence[Tensor], size: int) -> list[Packed]:
        """``leaves`` (batched ones of leading size ``n``) split into calls of ``size`` items."""
        n = next(t.shape[0] for t, s in zip(leaves, self.shared) if not s)
        return [
            self.pack([t if s else t[i : i + size] for t, s in zip(leaves, self.shared)])
            for i in range(0, n, max(size, 1))
        ]

    def replaced(self, index: int, value: Tensor) -> list[Tensor]:
        """The leaves with leaf ``index`` replaced by ``value``."""
        return [value if i == index else t for i, t in enumerate(self.leaves)]


def as_outputs(y: Any) -> tuple[Tensor, ...]:
    """``fn``'s (or a surrogate's) output(s) as a tuple: a tuple is several outputs."""
    return y if isinstance(y, tuple) else (y,)


def real_parts(ys: Sequence[Tensor]) -> list[int]:
    """The indices of the floating-point outputs (the others carry no gradient)."""
    return [k for k, y in enumerate(ys) if y.is_floating_point()]


def flatten_outputs(ys: Sequence[Tensor], lead: int) -> Tensor:
    """The floating-point outputs flattened after ``lead`` leading dims and concatenated."""
    parts = [y.reshape(*y.shape[:lead], -1) for y in ys if y.is_floating_point()]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=lead)


def only_argument_outputs(blackbox: Any, call: Call, estimator: str) -> tuple[Tensor, ...]:
    """``fn``'s outputs for ``call``, checked by :func:`only_argument` (the ``output_call`` of
    the estimators that map the output gradient onto the input: straight-through, DBB)."""
    ys = blackbox.call(call)
    only_argument(call, ys, estimator)
    return ys


def only_argument(call: Call, ys: Sequence[Tensor], estimator: str) -> int:
    """The one differentiable, batched leaf of ``call`` whose shape the one real output ``ys``
    has (for estimators that map the output gradient onto the input: straight-through, DBB)."""
    diff = [call.names[i] for i in call.diff]
    described = ", ".join(f"{call.names[i]} ({'shared' if call.shared[i] else 'batched'})"
                          for i in call.diff) or "none"  # fmt: skip
    if len(diff) != 1 or call.shared[call.diff[0]] or len(ys) != 1:
        raise TypeError(
            f"{estimator} maps the output's gradient onto the input, so it needs exactly one "
            "batched argument that requires grad and one output; got the differentiable "
            f"argument(s) {described} and {len(ys)} output(s). Use ES, Perturbed, Surrogate or "
            "FiniteDifference"
        )
    i = call.diff[0]
    if ys[0].shape != call.leaves[i].shape:
        raise ValueError(
            f"{estimator} needs fn's output to have the shape of {call.names[i]} "
            f"{tuple(call.leaves[i].shape)}; got {tuple(ys[0].shape)}. Use Surrogate or ES instead"
        )
    require_real(ys[0], estimator)
    return i
