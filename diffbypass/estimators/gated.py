"""Trust gating: use the surrogate's gradient only while an online check says it is faithful."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from diffbypass import distributed
from diffbypass.base import (
    Estimator, Evaluator, Predictor, Reporter, Smoothed, require_real, require_real_outputs,
)
from diffbypass.estimators.es import ES
from diffbypass.hooks import Hooks
from diffbypass.validation import instance_of, int_at_least, nonnegative_number, number_in

__all__ = ["GateStats", "Gated"]


@dataclass(frozen=True)
class GateStats:
    r"""Fidelity telemetry of a :class:`Gated` estimator after one backward pass.

    Attributes:
        step: backward passes so far (training mode).
        fidelity: running, noise-corrected estimate of the cosine between the surrogate's
            gradient and the smoothed gradient; ``nan`` before the first probe.
        advantage: running :math:`\bar a - \bar p` (see :class:`Gated`): how much better aligned
            the surrogate is than a probe-sized ES, in units of :math:`\lVert g\rVert`.
        probe_cosine: this step's (unclipped, noisy) estimate; ``nan`` when no probe ran.
        agreement: the surrogate's last held-out fit agreement (R² or accuracy; ``nan`` if none).
        trusted: whether this step returned the surrogate's gradient.
        probes: probes run so far.
        fallbacks: steps that returned the fallback's gradient.
    """

    step: int
    fidelity: float
    advantage: float
    probe_cosine: float
    agreement: float
    trusted: bool
    probes: int
    fallbacks: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


GateHook = Callable[[Any, GateStats], None]


class Gated(Estimator):
    r"""A surrogate, checked online against a cheap ES probe, with a fallback while it is wrong.

    Every ``every`` backward passes (and at the first) the gate runs two independent probes
    :math:`g_1, g_2` of the smoothed gradient :math:`g` (an :class:`~diffbypass.ES` with few
    samples) and keeps exponential averages of three inner products, with :math:`\hat s` the
    surrogate's gradient and :math:`\hat g_i` the probes, normalised:

    * :math:`a = \langle \hat s, (g_1 + g_2)/2\rangle`, whose mean is
      :math:`\lVert g\rVert \cos(s, g)`;
    * :math:`p = (\langle \hat g_1, g_2\rangle + \langle \hat g_2, g_1\rangle)/2`, whose mean
      is :math:`\lVert g\rVert\, E\cos(g_1, g)`: the same for one probe-sized ES;
    * :math:`q = \langle g_1, g_2\rangle`, whose mean is :math:`\lVert g\rVert^2`.

    The surrogate is **trusted** while :math:`\bar a \ge \bar p` — it is at least as aligned
    with the smoothed gradient as an independent ES of the probe's size; the unknown
    :math:`\lVert g\rVert` cancels, so this comparison stays reliable at high dimension — and
    the *fidelity* :math:`\bar a / \sqrt{\bar q}` (a noise-corrected estimate of
    :math:`\cos(s, g)`, clipped to :math:`[-1, 1]`; noisy when :math:`d \gg` probe samples) is
    at least ``threshold``, and the surrogate's held-out fit agreement is at least
    ``min_agreement``. While untrusted the backward returns ``fallback``'s gradient (on probe
    steps with the default fallback, the probes' average, at no extra call).

    Args:
        surrogate: the gated estimator (a :class:`~diffbypass.Surrogate`; its forward fits it).
        probe: the ES that probes (default ``ES(sigma=surrogate.sigma, samples=4)``);
            it runs twice per probe step.
        fallback: the estimator used while untrusted (default: ``probe``; a larger fallback than
            the probe makes the comparison favour the surrogate).
        every: probe every ``every`` backward passes (``k``).
        threshold: least fidelity at which the surrogate is trusted (default ``-1``: off).
        min_agreement: least held-out fit agreement (``FitStats.agreement_before``) for trust,
            a number up to 1; ``None`` to ignore it.
        decay: weight of the past in the running averages, in ``[0, 1)``.
        hysteresis: once trusted, the surrogate keeps its trust until :math:`\bar a - \bar p`
            falls below ``-hysteresis`` running standard errors of that average (``0``: below
            zero, no hysteresis). With hysteresis the surrogate also starts trusted, and one
            probe alone (whose spread is unknown) cannot withdraw it. Fewer fallbacks on noisy
            probes; a surrogate that degrades slowly is caught later. The default 2 and its
            comparison with ``0`` are measured in ``benchmarks/guided_gating/README.md`` (and
            :doc:`/which_estimator`).

    Attributes:
        gate_stats: :class:`GateStats` of the last backward (``None`` before the first).

    Example:
        >>> import torch
        >>> from diffbypass import ES, Bypass, Gated, Surrogate
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = torch.nn.Linear(3, 3)
        >>> gate = Gated(Surrogate(net, sigma=0.5, samples=8, fit_steps=1), every=5)
        >>> layer = Bypass(torch.sign, gate)
        >>> x = torch.randn(4, 3, requires_grad=True)
        >>> layer(x).sum().backward()
        >>> gate.gate_stats.probes, gate.gate_stats.step
        (1, 1)
    """

    calls_fn_in_backward = True

    def __init__(
        self,
        surrogate: Estimator,
        *,
        probe: ES | None = None,
        fallback: Estimator | None = None,
        every: int = 10,
        threshold: float = -1.0,
        min_agreement: float | None = None,
        decay: float = 0.8,
        hysteresis: float = 2.0,
    ) -> None:
        super().__init__()
        self.surrogate = instance_of("surrogate", surrogate, Estimator)
        if not isinstance(surrogate, Predictor):
            raise TypeError(
                f"surrogate must have a differentiable predict() (a Surrogate); got "
                f"{type(surrogate).__name__}"
            )
        if probe is None:
            sigma = surrogate.sigma if isinstance(surrogate, Smoothed) else 1.0
            probe = ES(sigma=sigma, samples=4)
        self.probe = instance_of("probe", probe, ES)
        self.fallback = None if fallback is None else instance_of("fallback", fallback, Estimator)
        self.every = int_at_least("every", every, 1)
        self.threshold = number_in("threshold", threshold, -1.0, 1.0)
        self.min_agreement = (
            None if min_agreement is None
            else number_in("min_agreement", min_agreement, -math.inf, 1.0)
        )  # fmt: skip
        self.decay = number_in("decay", decay, 0.0, 1.0)
        if self.decay == 1.0:
            raise ValueError("decay must be < 1 (1 would never update the fidelity); got 1.0")
        self.hysteresis = nonnegative_number("hysteresis", hysteresis)
        self.gate_stats: GateStats | None = None
        self._step, self._probes, self._fallbacks = 0, 0, 0
        # with hysteresis, trust is withdrawn only on evidence: the surrogate starts trusted
        self._fidelity, self._better = float("nan"), self.hysteresis > 0
        self._avg: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)  # a, p, q, (a - p)^2
        self._gate_hooks = Hooks()

    @property
    def stats(self) -> Any:
        """The surrogate's fit telemetry (:class:`~diffbypass.FitStats`)."""
        return self.surrogate.stats if isinstance(self.surrogate, Reporter) else None

    @property
    def fidelity(self) -> float:
        """The running estimate of the surrogate gradient's cosine to the smoothed gradient."""
        return self._fidelity

    def register_gate_hook(self, hook: GateHook) -> RemovableHandle:
        """Call ``hook(gated, gate_stats)`` after every backward pass (loggers)."""
        return self._gate_hooks.add(hook)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """The surrogate's differentiable prediction."""
        return self.surrogate.predict(*args, **kwargs)  # type: ignore[operator]

    def output(self, blackbox: Evaluator, x: Tensor) -> Tensor:
        return require_real(self.surrogate.output(blackbox, x), "Gated")

    def vjp(self, blackbox: Evaluator, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        return self._gate(
            self.surrogate.vjp(blackbox, x, y, grad_y),
            lambda: self.probe.vjp(blackbox, x, y, grad_y),
            lambda: (self.fallback or self.probe).vjp(blackbox, x, y, grad_y),
        )

    def output_call(self, blackbox: Any, call: Any) -> tuple[Tensor, ...]:
        return require_real_outputs(self.surrogate.output_call(blackbox, call), "Gated")

    def vjp_call(self, blackbox: Any, call: Any, ys: tuple[Tensor, ...],
                 grad_ys: tuple[Tensor, ...]) -> list[Tensor]:  # fmt: skip
        """As :meth:`vjp`, with the gradients of all differentiable arguments compared as one
        vector."""
        def flat(estimator: Estimator) -> Callable[[], Tensor]:
            return lambda: torch.cat([g.reshape(-1) for g in estimator.vjp_call(blackbox, call, ys, grad_ys)])

        grad = self._gate(flat(self.surrogate)(), flat(self.probe), flat(self.fallback or self.probe))
        sizes = [call.leaves[i].numel() for i in call.diff]
        return [g.reshape(call.leaves[i].shape) for g, i in zip(grad.split(sizes), call.diff)]

    def _gate(self, s: Tensor, probe: Callable[[], Tensor], fallback: Callable[[], Tensor]) -> Tensor:
        """The surrogate's gradient ``s`` or the fallback's, and the gate's bookkeeping."""
        probed = self._step % self.every == 0
        cosine, probe_mean = float("nan"), None
        if probed:
            g1 = probe().double()
            g2 = probe().double()
            probe_mean = ((g1 + g2) / 2).to(s.dtype)
            unit = lambda t: t / t.norm() if bool(t.norm() > 0) else t  # noqa: E731
            now = (
                float((unit(s.double()) * (g1 + g2)).sum()) / 2,
                float((unit(g1) * g2).sum() + (unit(g2) * g1).sum()) / 2,
                float((g1 * g2).sum()),
            )
            now = distributed.mean_floats(now)  # one decision on every rank, under DDP
            now += ((now[0] - now[1]) ** 2,)
            cosine = now[0] / now[2] ** 0.5 if now[2] > 0 else float("nan")
            k = 0.0 if self._probes == 0 else self.decay
            self._avg = tuple(k * old + (1 - k) * new for old, new in zip(self._avg, now))
            along, probe_along, square, diff_sq = self._avg
            self._fidelity = max(-1.0, min(1.0, along / square**0.5)) if square > 0 else 0.0
            diff = along - probe_along
            spread = (max(diff_sq - diff**2, 0.0) * (1 - k) / (1 + k)) ** 0.5 if k else math.inf
            keep = -self.hysteresis * spread if self._better and self.hysteresis else 0.0
            self._better = diff >= keep
            self._probes += 1
        fit = self.stats
        agreement = float("nan") if fit is None else float(fit.agreement_before)
        if self.min_agreement is not None:
            (agreement,) = distributed.mean_floats((agreement,))
        trusted = self._better and self._fidelity >= self.threshold and (
            self.min_agreement is None or agreement >= self.min_agreement
        )
        if trusted:
            grad = s
        else:
            self._fallbacks += 1
            if probe_mean is not None and self.fallback is None:
                grad = probe_mean
            else:
                grad = fallback()
        if self.training:
            self._step += 1
        self.gate_stats = GateStats(
            step=self._step, fidelity=self._fidelity, advantage=self._avg[0] - self._avg[1],
            probe_cosine=cosine, agreement=agreement,
            trusted=bool(trusted), probes=self._probes, fallbacks=self._fallbacks,
        )  # fmt: skip
        self._gate_hooks(self, self.gate_stats)
        return grad

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "step": self._step, "probes": self._probes, "fallbacks": self._fallbacks,
            "fidelity": self._fidelity, "better": self._better, "avg": list(self._avg),
        }  # fmt: skip

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._step, self._probes = int(state["step"]), int(state["probes"])
        self._fallbacks, self._fidelity = int(state["fallbacks"]), float(state["fidelity"])
        avg = [float(v) for v in state["avg"]]
        self._better, self._avg = bool(state["better"]), tuple(avg + [0.0] * (4 - len(avg)))

    def extra_repr(self) -> str:
        return (
            f"every={self.every}, threshold={self.threshold}, "
            f"min_agreement={self.min_agreement}, decay={self.decay}, "
            f"hysteresis={self.hysteresis}"
        )
