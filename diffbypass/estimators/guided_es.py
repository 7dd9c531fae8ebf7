"""Guided ES: evolution strategies that spend part of their samples in a guide's subspace."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Union

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from diffbypass import distributed
from diffbypass.arguments import Call
from diffbypass.base import Estimator, Evaluator, Reporter, require_real, require_real_outputs
from diffbypass.hooks import Hook, Hooks
from diffbypass.sampler import Sigma
from diffbypass.smoothing import Smoothing
from diffbypass.stats import ESStats
from diffbypass.validation import int_at_least, number_in, one_of

__all__ = ["GuidedES"]

Guide = Union[Estimator, Callable[..., Any]]
"""A :class:`~diffbypass.Estimator` (e.g. a Surrogate) or a function ``(x, grad_y) -> (B, ...)``
(with several arguments ``(*args, grad_y, **kwargs) -> one direction per argument``)."""


class GuidedES(Smoothing):
    r"""ES guided by a surrogate's gradients (after Maheswaranathan et al., 2019, Guided ES).

    Guided ES samples from a covariance that mixes the full space with the :math:`k`-dimensional
    subspace spanned by a *guide*'s recent gradients (a surrogate's, or any other estimator's):
    the guide's low variance where it is right, ES's robustness where it is wrong. With :math:`U`
    an orthonormal basis of the guide subspace (per item) and
    :math:`\delta_s = \langle v, f(x + \sigma\varepsilon_s)\rangle - \langle v, f(x)\rangle`:

    * ``variant="paper"`` (default; the paper's estimator): all :math:`S` directions from
      :math:`\mathcal N(0, \Sigma)`, :math:`\Sigma = \alpha I + (1-\alpha)\frac{n}{k}UU^\top`,
      and :math:`\hat g = \frac{1}{\sigma S}\sum_s \delta_s \varepsilon_s`, whose mean on a
      linear ``fn`` is the :math:`\Sigma`-preconditioned gradient: *biased* towards the guide.
    * ``variant="unbiased"``: a split of the budget, with :math:`P = I - UU^\top`,

      .. math::
          \hat g = \underbrace{\frac{1}{\sigma S_\perp}\sum_{s} \delta_s\, P z_s}_{S_\perp =
          \lceil\alpha S\rceil\ \text{directions}\ P z_s,\ z_s\sim\mathcal N(0, I)}
          + \underbrace{\frac{1}{\sigma S_U}\sum_{s} \delta_s\, U w_s}_{S_U = S - S_\perp\
          \text{directions}\ U w_s,\ w_s \sim \mathcal N(0, I_k)}

      :math:`E[Pzz^\top P] = P` and :math:`E[Uww^\top U^\top] = UU^\top` sum to :math:`I`, so
      it is unbiased for the smoothed gradient on a linear ``fn`` *whatever the guide*; an
      adversarial guide leaves ES in the complement with :math:`\alpha S` samples.

    The default is the paper's because it was the better one at equal budget wherever it was
    measured (``benchmarks/guided_gating/README.md``, ``benchmarks/estimators/README.md``,
    ``benchmarks/shortest_path/README.md``; :doc:`/which_estimator`): the unbiased split keeps ES's noise in the complement with
    :math:`\alpha S` samples. Choose ``"unbiased"`` when an unbiased estimate matters more than
    its variance.

    **Several arguments** (``Bypass(fn, GuidedES(...), shared=(...))``): every differentiable
    argument is perturbed at once, each in its own guided space built from the guide's gradient
    for it — a batched argument's per item, a shared argument's one for the whole batch (its
    gradient summed over the batch) — with its own ``sigma`` and the same split of the samples;
    one evaluation of ``fn`` per sample weights them all. The covariance is the one above per
    argument (block-diagonal), so ``"unbiased"`` stays unbiased for every argument.

    Args:
        guide: an :class:`~diffbypass.Estimator` — typically a :class:`~diffbypass.Surrogate`;
            its ``output`` runs in the forward (the surrogate fits there) and its ``vjp`` gives
            the guide direction — or a function ``(x, grad_y) -> directions`` of ``x``'s shape.
            With several arguments the function is called as ``guide(*args, grad_y, **kwargs)``
            (``fn``'s arguments in ``fn``'s order; ``grad_y`` a tuple for several outputs) and
            returns one direction per differentiable tensor argument, in argument order (a
            shared argument's of its own shape), e.g. a differentiable model's gradients.
        sigma: smoothing scale :math:`\sigma > 0` (a number, a per-coordinate tensor or
            :class:`~diffbypass.Relative`).
        samples: :math:`S \ge 2` evaluations of ``fn`` per input and backward.
        alpha: :math:`\alpha \in (0, 1)`, the share of samples in the full (complement) space.
        history: also span the guide's last ``history`` batch-mean directions (the paper's
            "recent gradients"; useful when successive inputs share a gradient).
        antithetic: pairs :math:`\pm\varepsilon` in each part (each count must then be even).
        variant: ``"paper"`` (default) or ``"unbiased"`` (see above).
        baseline: subtract :math:`\langle v, f(x)\rangle` (default ``True``).
        shaping: ``None`` or ``"centered_ranks"`` (as for :class:`~diffbypass.ES`).
        generator: CPU ``torch.Generator`` for the noise.

    The estimate is :func:`~diffbypass.smoothing.smoothed_vjp` with the directions above: with
    ``Bypass(nonfinite="drop")`` samples where ``fn`` gave NaN/inf are left out. The history
    is emptied when the input items change size (their directions no longer apply).

    Attributes:
        sample_stats: :class:`~diffbypass.ESStats` of the last estimate;
            :meth:`register_sample_hook` calls a hook with it after every estimate.

    Example:
        >>> import torch
        >>> from diffbypass import Bypass, GuidedES
        >>> w = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
        >>> perfect = lambda x, v: v * w  # the true vjp of x @ w.T
        >>> # with a perfect guide, the unbiased split has no noise left: cosine 1
        >>> layer = Bypass(lambda x: x @ w.T, GuidedES(perfect, sigma=0.1, samples=4,
        ...                variant="unbiased", generator=torch.Generator().manual_seed(0)))
        >>> x = torch.zeros(1, 4, requires_grad=True)
        >>> layer(x).sum().backward()
        >>> torch.nn.functional.cosine_similarity(x.grad, w).item() > 0.999
        True
    """

    what = "guided ES samples"

    def __init__(
        self,
        guide: Guide,
        *,
        sigma: Sigma,
        samples: int,
        alpha: float = 0.5,
        history: int = 0,
        antithetic: bool = True,
        variant: str = "paper",
        baseline: bool = True,
        shaping: str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        int_at_least("samples", samples, 4 if antithetic else 2)
        super().__init__(sigma=sigma, samples=samples, antithetic=antithetic, baseline=baseline,
                         shaping=shaping, generator=generator)  # fmt: skip
        self.variant = one_of("variant", variant, ("paper", "unbiased"))  # keys of _VARIANTS
        if isinstance(guide, Estimator):
            self.guide: Estimator | None = guide
            self._guide_fn = None
        elif callable(guide):
            self.guide, self._guide_fn = None, guide
        else:
            raise TypeError(
                "guide must be a diffbypass Estimator (e.g. Surrogate) or a function "
                f"(x, grad_y) -> directions; got {type(guide).__name__}"
            )
        self.alpha = number_in("alpha", alpha, 0.0, 1.0, closed=False)
        self.antithetic = self.sampler.antithetic
        step = 2 if self.antithetic else 1
        full = max(step, step * round(self.alpha * samples / step))
        self.split = (min(full, samples - step), samples - min(full, samples - step))
        self.history = int_at_least("history", history, 0)
        self._past: deque[Tensor] = deque(maxlen=self.history or None)
        self._pasts: dict[str, deque[Tensor]] = {}  # per argument, for several arguments
        self.sample_stats: ESStats | None = None
        self._sample_hooks = Hooks()

    @property
    def stats(self) -> Any:
        """The guide's fit telemetry (``None`` for a guide without one)."""
        return self.guide.stats if isinstance(self.guide, Reporter) else None

    def register_sample_hook(self, hook: Hook) -> RemovableHandle:
        """Call ``hook(guided_es, sample_stats)`` after every estimate (loggers)."""
        return self._sample_hooks.add(hook)

    def _report(self, stats: ESStats) -> None:
        self.sample_stats = stats
        self._sample_hooks(self, stats)

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        y = self.guide.output(blackbox, x) if self.guide is not None else blackbox(x)
        return require_real(y, "GuidedES")

    def output_call(self, blackbox: Any, call: Call) -> tuple[Tensor, ...]:
        if self.guide is None:
            return super().output_call(blackbox, call)
        return require_real_outputs(tuple(self.guide.output_call(blackbox, call)), "GuidedES")

    def directions(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        """The guide's directions, ``(B, k, n)`` with ``n`` the item size, in the coordinates of
        the noise :math:`\\varepsilon` (times the noise scale, so that with a per-coordinate or
        relative ``sigma`` the paper's covariance still leans towards the guide's gradient)."""
        if self.guide is not None:
            d = self.guide.vjp(blackbox, x, y, grad_y)
        else:
            d = torch.as_tensor(self._guide_fn(x.detach(), grad_y))  # type: ignore[misc]
        d = _checked(d, x, None, x.shape[0]) * self.sampler.scale(x)
        return self._span(d.reshape(x.shape[0], 1, -1), self._past)

    def call_directions(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                        grad_ys: tuple[Tensor | None, ...]) -> list[Tensor]:  # fmt: skip
        """The guide's direction for every differentiable argument (``call.diff``), each of its
        argument's shape (a shared argument's summed over the batch)."""
        if self.guide is not None:
            found = list(self.guide.vjp_call(blackbox, call, ys, grad_ys))
        else:
            packed = call.pack(call.leaves)
            grad_y = grad_ys[0] if len(grad_ys) == 1 else grad_ys
            with torch.enable_grad():  # the guide may use autograd (a model's gradients)
                out = self._guide_fn(*packed.args, grad_y, **packed.kwargs)  # type: ignore[misc]
            found = [out] if isinstance(out, Tensor) else list(out)
        names = [call.names[i] for i in call.diff]
        if len(found) != len(names):
            raise ValueError(
                f"the guide must return one direction per differentiable argument {tuple(names)}"
                f", in argument order; got {len(found)}"
            )
        return [_checked(torch.as_tensor(d), call.leaves[i], call.names[i],
                         None if call.shared[i] else call.batch)
                for d, i in zip(found, call.diff)]  # fmt: skip

    def _span(self, d: Tensor, past: deque[Tensor]) -> Tensor:
        """The directions ``d`` ``(B, 1, n)`` and the ``history`` last batch means (kept in
        ``past``): ``(B, k, n)``."""
        if past and past[0].numel() != d.shape[2]:
            past.clear()  # directions for items of another size say nothing here
        if self.history and past:
            old = torch.stack(list(past)).to(d.device, d.dtype)
            d = torch.cat([d, old.unsqueeze(0).expand(d.shape[0], -1, -1)], dim=1)
        if self.history and self.training:
            mean = distributed.mean(d[:, 0].mean(0))  # over the ranks too, under DDP
            if bool(mean.norm() > 0):
                past.append(mean / mean.norm())
        return d

    def _guided_noise(self, guide: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """The variant's directions ``(S, B, n)`` in the span of ``guide`` ``(B, k, n)``."""
        basis = torch.linalg.qr(guide.transpose(1, 2).double())[0].to(guide.dtype)  # (B, n, k)
        basis = basis[:, :, : min(basis.shape[2], guide.shape[2])]
        return _VARIANTS[self.variant](self, basis)

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        eps, groups = self._guided_noise(self.directions(blackbox, x, y, grad_y))
        return self._estimate(blackbox, x, y, grad_y, eps.reshape(-1, *x.shape), groups=groups)

    def vjp_call(self, blackbox: Any, call: Call, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor | None, ...]) -> list[Tensor]:  # fmt: skip
        """Every differentiable argument perturbed at once, each in its own guided space (a
        shared argument's one for the batch), all with the same split of the samples."""
        eps, groups = [], None
        for d, i in zip(self.call_directions(blackbox, call, ys, grad_ys), call.diff):
            d = d * self.sampler.scale_of(call, i)  # in the noise's coordinates, as in directions
            items = 1 if call.shared[i] else call.batch
            past = self._pasts.setdefault(call.names[i], deque(maxlen=self.history or None))
            e, groups = self._guided_noise(self._span(d.reshape(items, 1, -1), past))
            eps.append(e.reshape(-1, *call.leaves[i].shape))
        return self._estimate_call(blackbox, call, ys, grad_ys, eps, groups=groups)

    def _paper_noise(self, basis: Tensor) -> Noise:
        """All S from N(0, alpha I + (1 - alpha) n/k U U^T)."""
        n, k = basis.shape[1], basis.shape[2]
        z = self.sampler.draw(self.samples, basis.shape[:2], basis.dtype).to(basis.device)
        sub = self.sampler.within(basis, self.samples)
        eps = self.alpha**0.5 * z + ((1 - self.alpha) * n / k) ** 0.5 * sub
        return eps, (self.samples,)

    def _unbiased_noise(self, basis: Tensor) -> Noise:
        """S_perp directions P z in the complement, then S_U directions U w in the subspace."""
        s_full, s_sub = self.split
        eps = torch.cat([self.sampler.outside(basis, s_full), self.sampler.within(basis, s_sub)])
        return eps, self.split

    def get_extra_state(self) -> dict[str, Any]:
        pasts = {name: list(past) for name, past in self._pasts.items()}
        return {"sampler": self.sampler.state_dict(), "past": list(self._past), "pasts": pasts}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        restore = lambda ts: deque((t.clone() for t in ts), maxlen=self.history or None)  # noqa: E731
        self._past = restore(state["past"])
        self._pasts = {name: restore(ts) for name, ts in state.get("pasts", {}).items()}

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, alpha={self.alpha}, "
            f"split={self.split}, history={self.history}, antithetic={self.antithetic}, "
            f"variant={self.variant!r}"
        )


#: variant -> the noise it samples: ``(eps (S, B, n), sizes of the groups averaged apart)``
_VARIANTS = {"unbiased": GuidedES._unbiased_noise, "paper": GuidedES._paper_noise}


def _checked(d: Tensor, leaf: Tensor, name: str | None, batch: int | None) -> Tensor:
    """The guide's direction ``d`` for the argument ``name`` (``None``: the one input ``x``) of
    ``leaf``'s shape, finite, detached in ``leaf``'s dtype; ``batch`` (``None`` for a shared
    argument) names the items with NaN/inf."""
    label = f" for {name}" if name else ""
    name = name or "x"
    if d.shape != leaf.shape:
        raise ValueError(f"the guide must return {name}'s shape {tuple(leaf.shape)}; "
                         f"got {tuple(d.shape)}")  # fmt: skip
    bad = ~torch.isfinite(d.detach())
    if bool(bad.any()):
        where = "" if batch is None else " (batch items " + str(
            bad.reshape(batch, -1).any(1).nonzero().flatten().tolist()[:10]) + ")"
        raise ValueError(
            f"the guide returned {int(bad.sum())} NaN/inf value(s) in its directions{label}"
            f"{where}; a guide must return finite directions of {name}'s shape"
        )
    return d.detach().to(leaf.dtype)
