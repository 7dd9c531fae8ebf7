"""``check_gradient``: test an estimator on your own function before trusting it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Callable, Union

import torch
from torch import Tensor

from diffbypass.base import BlackBoxFn, Estimator, Smoothed
from diffbypass.bypass import Bypass
from diffbypass.estimators.es import ES
from diffbypass.estimators.finite_difference import FiniteDifference
from diffbypass.hooks import remove_hooks

__all__ = ["GradientCheck", "check_gradient"]

Reference = Union[str, Estimator, Callable[[Tensor, Tensor], Tensor]]


@dataclass(frozen=True)
class GradientCheck:
    """An estimated input gradient compared with a reference.

    Attributes:
        cosine: cosine similarity of the whole (flattened) gradients.
        norm_ratio: ``|estimate| / |reference|``.
        per_sample_cosine: cosine per batch item, shape ``(B,)``.
        per_sample_norm_ratio: norm ratio per batch item, shape ``(B,)``.
        estimate: the estimator's gradient.
        reference: the reference gradient.
        per_argument: for a black box with several arguments, one :class:`GradientCheck` per
            differentiable argument (by name; a shared argument's "per sample" values are its
            one summed gradient's); the fields above then compare all of them as one vector
            (``estimate`` and ``reference`` of shape ``(1, N)``). ``None`` for one input.
    """

    cosine: float
    norm_ratio: float
    per_sample_cosine: Tensor
    per_sample_norm_ratio: Tensor
    estimate: Tensor
    reference: Tensor
    per_argument: dict[str, GradientCheck] | None = None

    def __str__(self) -> str:
        text = (
            f"cosine {self.cosine:.3f} (per sample min {float(self.per_sample_cosine.min()):.3f}), "
            f"norm ratio {self.norm_ratio:.3f}"
        )
        if self.per_argument:
            text += "; " + ", ".join(f"{k}: cosine {c.cosine:.3f}" for k, c in self.per_argument.items())
        return text


def _compare(estimate: Tensor, ref: Tensor) -> GradientCheck:
    """The comparison of two gradients with a leading batch dimension."""
    per_cos = _cosine(estimate, ref)
    per_ratio = estimate.flatten(1).double().norm(dim=1) / ref.flatten(1).double().norm(dim=1)
    cos = float(_cosine(estimate.reshape(1, -1), ref.reshape(1, -1))[0])
    ratio = float(estimate.double().norm() / ref.double().norm())
    return GradientCheck(cos, ratio, per_cos, per_ratio, estimate, ref)


def _call_gradients(
    layer: Bypass, args: tuple, grad_output: tuple[Tensor, ...] | None, seed: int
) -> tuple[dict[str, Tensor], tuple[Tensor, ...]]:
    """The gradient of every floating-point tensor argument (by name) and the ``grad_output``."""
    inputs = [a.detach().clone().requires_grad_(a.is_floating_point()) if isinstance(a, Tensor)
              else a for a in args]  # fmt: skip
    ys = layer(*inputs)
    ys = ys if isinstance(ys, tuple) else (ys,)
    real = [y for y in ys if y.is_floating_point()]
    if not real:
        raise TypeError("check_gradient needs a real-valued fn output; got only integer outputs")
    if grad_output is None:
        g = torch.Generator().manual_seed(seed)
        grad_output = tuple(torch.randn(y.shape, generator=g, dtype=y.dtype).to(y.device) for y in real)
    call = layer.arguments.bind(tuple(inputs), {})
    wrt = [call.inputs[i] for i in call.diff]
    grads = torch.autograd.grad(real, wrt, list(grad_output))
    return {call.names[i]: g for i, g in zip(call.diff, grads)}, tuple(grad_output)


def _check_call(layer: Bypass, args: tuple, reference: Reference, grad_output: Any, eps: float,
                reference_samples: int, reference_sigma: Any, seed: int) -> GradientCheck:  # fmt: skip
    """:func:`check_gradient` for a black box called with several arguments ``args``."""
    shared = layer.arguments.shared if layer.arguments.declared else None
    estimate, v = _call_gradients(layer, args, grad_output, seed)
    if isinstance(reference, Estimator):
        ref = _call_gradients(Bypass(layer.fn, _copy(reference), shared=shared), args, v, seed)[0]
    elif reference == "finite_difference":
        ref = _call_gradients(Bypass(layer.fn, FiniteDifference(eps=eps), shared=shared), args, v, seed)[0]
    elif reference == "es":
        sigma = reference_sigma or getattr(layer.estimator, "sigma", None)
        if sigma is None:
            raise ValueError("reference='es' needs reference_sigma for this estimator")
        es = ES(sigma=sigma, samples=reference_samples + reference_samples % 2,
                generator=torch.Generator().manual_seed(seed + 1))
        ref = _call_gradients(Bypass(layer.fn, es, shared=shared), args, v, seed)[0]
    elif callable(reference):
        found = reference(tuple(a.detach().clone() if isinstance(a, Tensor) else a for a in args), v)
        ref = dict(zip(estimate, found)) if not isinstance(found, dict) else found
        if set(ref) != set(estimate):
            raise ValueError(f"reference must return a gradient for each of {tuple(estimate)}; "
                             f"got {tuple(ref)}")  # fmt: skip
    else:
        raise ValueError(f"reference must be 'finite_difference', 'es', an Estimator or a callable; got {reference!r}")
    per = {}
    for name, g in estimate.items():
        r = torch.as_tensor(ref[name]).to(g)
        if r.shape != g.shape:
            raise ValueError(f"the reference gradient of {name} has shape {tuple(r.shape)}; "
                             f"expected {tuple(g.shape)}")  # fmt: skip
        shared_leaf = g.dim() == 0 or name.split("[")[0] in layer.arguments.shared
        per[name] = _compare(g.reshape(1, -1), r.reshape(1, -1)) if shared_leaf else _compare(g, r)
    whole = _compare(torch.cat([c.estimate.reshape(-1) for c in per.values()]).reshape(1, -1),
                     torch.cat([c.reference.reshape(-1) for c in per.values()]).reshape(1, -1))  # fmt: skip
    return GradientCheck(whole.cosine, whole.norm_ratio, whole.per_sample_cosine,
                         whole.per_sample_norm_ratio, whole.estimate, whole.reference, per)  # fmt: skip


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)


def _gradient(layer: Bypass, x: Tensor, grad_output: Tensor | None, seed: int) -> tuple[Tensor, Tensor]:
    xx = x.detach().clone().requires_grad_(True)
    y = layer(xx)
    if not y.is_floating_point():
        raise TypeError(
            f"check_gradient needs a real-valued fn output; got {y.dtype}. For index outputs "
            "compare Bypass.predict against a reference instead"
        )
    if grad_output is None:
        g = torch.Generator().manual_seed(seed)
        grad_output = torch.randn(y.shape, generator=g, dtype=y.dtype).to(y.device)
    y.backward(grad_output)
    assert xx.grad is not None
    return xx.grad.detach(), grad_output


def _copy(estimator: Estimator) -> Estimator:
    """A deep copy (model, optimiser, generator) without any of the caller's hooks (those of
    inner estimators too: a Gated's surrogate, a GuidedES's guide)."""
    return remove_hooks(copy.deepcopy(estimator))


def check_gradient(
    layer_or_estimator: Bypass | Estimator,
    fn: BlackBoxFn | None,
    x: Tensor | tuple,
    reference: Reference = "finite_difference",
    *,
    grad_output: Tensor | None = None,
    eps: float = 1e-3,
    reference_samples: int = 10_000,
    reference_sigma: float | None = None,
    seed: int = 0,
    shared: Sequence[str | int] | None = None,
) -> GradientCheck:
    r"""Compare an estimator's input gradient with a reference on ``fn`` at ``x``.

    Both gradients are vector-Jacobian products with the same ``grad_output`` (by default a
    seeded standard-normal tensor of ``fn(x)``'s shape).

    The check works on a copy of the estimator (and of a reference estimator): the caller's
    surrogate is not fitted, its random generator not advanced, its hooks not called, and a
    ``Bypass``'s call counters stay as they were. A training-mode ``Surrogate`` copy fits itself
    once at ``x`` before its gradient is taken, as in a training step.

    Args:
        layer_or_estimator: a :class:`~diffbypass.Bypass` (``fn`` may then be ``None``) or an
            estimator to wrap around ``fn``.
        fn: the black box.
        x: input batch :math:`(B, \dots)`.
        reference: ``"finite_difference"`` (central differences with ``eps``; exact for smooth
            ``fn``), ``"es"`` (a large-sample ES with ``reference_samples`` and
            ``reference_sigma`` — the smoothed gradient, for piecewise-constant ``fn``), an
            estimator, or a callable ``reference(x, grad_output) -> gradient``.
        grad_output: the vector :math:`v` of the vector-Jacobian product.
        seed: seeds the default ``grad_output``.
        shared: the shared arguments, as for :class:`~diffbypass.Bypass` (when an estimator,
            not a ``Bypass``, is given).

    For a black box with several arguments pass ``x`` as the tuple of positional arguments
    (``grad_output`` then a tuple, one per real output); every floating-point tensor argument
    is differentiated, and :attr:`GradientCheck.per_argument` holds a cosine per argument. A
    callable ``reference`` then gets ``(args, grad_output)`` and returns one gradient per
    differentiable argument (a dict by name, or a sequence in order).

    Returns:
        A :class:`GradientCheck`.

    Example:
        >>> import torch
        >>> from diffbypass import ES, check_gradient
        >>> x = torch.randn(4, 8, dtype=torch.float64)
        >>> est = ES(sigma=1e-2, samples=2000, generator=torch.Generator().manual_seed(0))
        >>> check_gradient(est, torch.sin, x).cosine > 0.9
        True
    """
    if isinstance(layer_or_estimator, Bypass):
        layer = layer_or_estimator
        if fn is not None and fn is not layer.fn:
            raise ValueError("fn must be None or the Bypass's own fn when a Bypass is given")
        fn = layer.fn
        spec = layer.arguments
        layer = Bypass(fn, _copy(layer.estimator), shared=spec.shared if spec.declared else None,
                       **layer.blackbox.policy())  # fmt: skip
    elif isinstance(layer_or_estimator, Estimator):
        if fn is None:
            raise ValueError("fn must be given when layer_or_estimator is an estimator")
        layer = Bypass(fn, _copy(layer_or_estimator), shared=shared)
    else:
        raise TypeError(
            f"layer_or_estimator must be a Bypass or an Estimator; got {type(layer_or_estimator).__name__}"
        )
    if isinstance(x, tuple):
        return _check_call(layer, x, reference, grad_output, eps, reference_samples,
                           reference_sigma, seed)  # fmt: skip
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("x must be a batched tensor (B, ...), or a tuple of fn's arguments")
    estimate, v = _gradient(layer, x, grad_output, seed)

    if isinstance(reference, Estimator):
        ref = _gradient(Bypass(fn, _copy(reference)), x, v, seed)[0]
    elif reference == "finite_difference":
        ref = _gradient(Bypass(fn, FiniteDifference(eps=eps)), x, v, seed)[0]
    elif reference == "es":
        est = layer.estimator
        sigma = reference_sigma or (est.sigma if isinstance(est, Smoothed) else None)
        if sigma is None:
            raise ValueError("reference='es' needs reference_sigma for this estimator")
        es = ES(sigma=sigma, samples=reference_samples + reference_samples % 2,
                generator=torch.Generator().manual_seed(seed + 1))
        ref = _gradient(Bypass(fn, es, max_batch=max(1, 2**20 // max(1, x[0].numel()))), x, v, seed)[0]
    elif callable(reference):
        ref = torch.as_tensor(reference(x.detach().clone(), v.clone())).to(estimate)
        if ref.shape != estimate.shape:
            raise ValueError(
                f"reference returned shape {tuple(ref.shape)}; expected {tuple(estimate.shape)}"
            )
    else:
        raise ValueError(
            "reference must be 'finite_difference', 'es', an Estimator or a callable; "
            f"got {reference!r}"
        )
    return _compare(estimate, ref)
