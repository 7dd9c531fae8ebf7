"""``check_gradient``: test an estimator on your own function before trusting it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Union

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
    """

    cosine: float
    norm_ratio: float
    per_sample_cosine: Tensor
    per_sample_norm_ratio: Tensor
    estimate: Tensor
    reference: Tensor

    def __str__(self) -> str:
        return (
            f"cosine {self.cosine:.3f} (per sample min {float(self.per_sample_cosine.min()):.3f}), "
            f"norm ratio {self.norm_ratio:.3f}"
        )


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
    x: Tensor,
    reference: Reference = "finite_difference",
    *,
    grad_output: Tensor | None = None,
    eps: float = 1e-3,
    reference_samples: int = 10_000,
    reference_sigma: float | None = None,
    seed: int = 0,
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
        layer = Bypass(fn, _copy(layer.estimator), **layer.blackbox.policy())
    elif isinstance(layer_or_estimator, Estimator):
        if fn is None:
            raise ValueError("fn must be given when layer_or_estimator is an estimator")
        layer = Bypass(fn, _copy(layer_or_estimator))
    else:
        raise TypeError(
            f"layer_or_estimator must be a Bypass or an Estimator; got {type(layer_or_estimator).__name__}"
        )
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError("x must be a batched tensor (B, ...)")
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
    per_cos = _cosine(estimate, ref)
    per_ratio = estimate.flatten(1).double().norm(dim=1) / ref.flatten(1).double().norm(dim=1)
    cos = float(_cosine(estimate.reshape(1, -1), ref.reshape(1, -1))[0])
    ratio = float(estimate.double().norm() / ref.double().norm())
    return GradientCheck(cos, ratio, per_cos, per_ratio, estimate, ref)
