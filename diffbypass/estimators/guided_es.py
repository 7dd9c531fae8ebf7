"""Guided ES: evolution strategies that spend part of their samples in a guide's subspace."""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Union

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from diffbypass import distributed
from diffbypass.base import Estimator, Evaluator, Reporter, require_real
from diffbypass.hooks import Hook, Hooks
from diffbypass.sampler import Sigma
from diffbypass.smoothing import Smoothing
from diffbypass.stats import ESStats
from diffbypass.validation import int_at_least, number_in, one_of

__all__ = ["GuidedES"]

Guide = Union[Estimator, Callable[[Tensor, Tensor], Tensor]]
"""A :class:`~diffbypass.Estimator` (e.g. a Surrogate) or a function ``(x, grad_y) -> (B, ...)``."""


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
    measured (``benchmarks/guided_gating.py``, 3 seeds: never below both ES and the surrogate,
    where the unbiased split fell below both with a poor guide; ``benchmarks/estimators.py``;
    the shortest-path benchmark): the unbiased split keeps ES's noise in the complement with
    :math:`\alpha S` samples. Choose ``"unbiased"`` when an unbiased estimate matters more than
    its variance.

    Args:
        guide: an :class:`~diffbypass.Estimator` — typically a :class:`~diffbypass.Surrogate`;
            its ``output`` runs in the forward (the surrogate fits there) and its ``vjp`` gives
            the guide direction — or a function ``(x, grad_y) -> directions`` of ``x``'s shape.
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

    def output_call(self, blackbox: Any, call: Any) -> tuple[Tensor, ...]:
        raise TypeError(
            "GuidedES supports one tensor argument and one output only (its guide subspace is "
            f"built per input item); fn was called with {tuple(call.names)}. Use ES, or "
            "Gated(Surrogate(...)) for a surrogate checked against ES"
        )

    def directions(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        """The guide's directions, ``(B, k, n)`` with ``n`` the item size."""
        if self.guide is not None:
            d = self.guide.vjp(blackbox, x, y, grad_y)
        else:
            d = torch.as_tensor(self._guide_fn(x.detach(), grad_y))  # type: ignore[misc]
        if d.shape != x.shape:
            raise ValueError(
                f"the guide must return x's shape {tuple(x.shape)}; got {tuple(d.shape)}"
            )
        bad = ~torch.isfinite(d.detach())
        if bool(bad.any()):
            rows = bad.reshape(len(bad), -1).any(1).nonzero().flatten().tolist()
            raise ValueError(
                f"the guide returned {int(bad.sum())} NaN/inf value(s) in its directions (batch "
                f"items {rows[:10]}); a guide must return finite directions of x's shape"
            )
        d = d.detach().reshape(x.shape[0], 1, -1).to(x.dtype)
        if self._past and self._past[0].numel() != d.shape[2]:
            self._past.clear()  # directions for items of another size say nothing here
        if self.history and self._past:
            past = torch.stack(list(self._past)).to(x.device, x.dtype)
            d = torch.cat([d, past.unsqueeze(0).expand(x.shape[0], -1, -1)], dim=1)
        if self.history and self.training:
            mean = distributed.mean(d[:, 0].mean(0))  # over the ranks too, under DDP
            if bool(mean.norm() > 0):
                self._past.append(mean / mean.norm())
        return d

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        n = x[0].numel()
        guide = self.directions(blackbox, x, y, grad_y)
        basis = torch.linalg.qr(guide.transpose(1, 2).double())[0].to(x.dtype)  # (B, n, k)
        basis = basis[:, :, : min(basis.shape[2], n)]
        eps, groups = _VARIANTS[self.variant](self, basis)  # (S, B, n)
        return self._estimate(blackbox, x, y, grad_y, eps.reshape(-1, *x.shape), groups=groups)

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
        return {"sampler": self.sampler.state_dict(), "past": list(self._past)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])
        self._past = deque((t.clone() for t in state["past"]), maxlen=self.history or None)

    def extra_repr(self) -> str:
        return (
            f"sigma={self.sigma}, samples={self.samples}, alpha={self.alpha}, "
            f"split={self.split}, history={self.history}, antithetic={self.antithetic}, "
            f"variant={self.variant!r}"
        )


#: variant -> the noise it samples: ``(eps (S, B, n), sizes of the groups averaged apart)``
_VARIANTS = {"unbiased": GuidedES._unbiased_noise, "paper": GuidedES._paper_noise}
