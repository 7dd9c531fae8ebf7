"""Trust gating: use the surrogate's gradient only while an online check says it is faithful."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from diffbypass.base import Estimator, require_real
from diffbypass.blackbox import BlackBox
from diffbypass.estimators.es import ES
from diffbypass.validation import instance_of, int_at_least, number_in

__all__ = ["GateStats", "Gated"]


@dataclass(frozen=True)
class GateStats:
    """Fidelity telemetry of a :class:`Gated` estimator after one backward pass.

    Attributes:
        step: backward passes so far (training mode).
        fidelity: running (exponential-average) estimate of the cosine between the surrogate's
            gradient and the smoothed gradient; ``nan`` before the first probe.
        probe_cosine: this step's (unclipped, noisy) estimate; ``nan`` when no probe ran.
        agreement: the surrogate's last held-out fit agreement (R² or accuracy; ``nan`` if none).
        trusted: whether this step returned the surrogate's gradient.
        probes: probes run so far.
        fallbacks: steps that returned the fallback's gradient.
    """

    step: int
    fidelity: float
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
    :math:`g_1, g_2` of the smoothed gradient (an :class:`~diffbypass.ES` with few samples) and
    estimates the cosine of the surrogate's gradient :math:`s` to the smoothed gradient
    :math:`g` *without the probe's noise*:

    .. math::
        \widehat{\cos}(s, g) = \frac{\langle s, (g_1 + g_2)/2\rangle}
        {\lVert s\rVert \sqrt{\max(\langle g_1, g_2\rangle, 0)}},

    as :math:`E\langle g_1, g_2\rangle = \lVert g\rVert^2` (a noisy probe alone would make even a
    perfect surrogate look poor). The running *fidelity* is the ratio of exponential averages of
    the numerator :math:`\langle s/\lVert s\rVert, (g_1+g_2)/2\rangle` and of
    :math:`\langle g_1, g_2\rangle` (a ratio of averages is far less biased than an average of
    ratios), clipped to :math:`[-1, 1]`. While the fidelity is below ``threshold`` — or the surrogate's
    held-out fit agreement is below ``min_agreement`` — the backward returns ``fallback``'s
    gradient (ES, or :class:`~diffbypass.GuidedES` guided by a *fixed* function); otherwise the
    surrogate's. On probe steps while untrusted the probes' average is returned instead of
    calling the fallback.

    Args:
        surrogate: the gated estimator (a :class:`~diffbypass.Surrogate`; its forward fits it).
        probe: the ES that probes (default ``ES(sigma=surrogate.sigma, samples=4)``);
            it runs twice per probe step.
        fallback: the estimator used while untrusted (default: ``probe``).
        every: probe every ``every`` backward passes (``k``).
        threshold: least fidelity at which the surrogate is trusted.
        min_agreement: least held-out fit agreement (``FitStats.agreement_before``) for trust;
            ``None`` to ignore it.
        decay: weight of the past in the fidelity's running average, in ``[0, 1)``.

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
        threshold: float = 0.5,
        min_agreement: float | None = None,
        decay: float = 0.5,
    ) -> None:
        super().__init__()
        self.surrogate = instance_of("surrogate", surrogate, Estimator)
        if not hasattr(surrogate, "predict"):
            raise TypeError(
                f"surrogate must have a differentiable predict() (a Surrogate); got "
                f"{type(surrogate).__name__}"
            )
        if probe is None:
            probe = ES(sigma=float(getattr(surrogate, "sigma", 1.0)), samples=4)
        self.probe = instance_of("probe", probe, ES)
        self.fallback = None if fallback is None else instance_of("fallback", fallback, Estimator)
        self.every = int_at_least("every", every, 1)
        self.threshold = number_in("threshold", threshold, -1.0, 1.0)
        self.min_agreement = None if min_agreement is None else float(min_agreement)
        self.decay = number_in("decay", decay, 0.0, 1.0)
        if self.decay == 1.0:
            raise ValueError("decay must be < 1 (1 would never update the fidelity); got 1.0")
        self.gate_stats: GateStats | None = None
        self._step, self._probes, self._fallbacks = 0, 0, 0
        self._fidelity, self._along, self._square = float("nan"), 0.0, 0.0
        self._hooks: OrderedDict[int, GateHook] = OrderedDict()

    @property
    def stats(self) -> Any:
        """The surrogate's fit telemetry (:class:`~diffbypass.FitStats`)."""
        return getattr(self.surrogate, "stats", None)

    @property
    def fidelity(self) -> float:
        """The running estimate of the surrogate gradient's cosine to the smoothed gradient."""
        return self._fidelity

    def register_gate_hook(self, hook: GateHook) -> RemovableHandle:
        """Call ``hook(gated, gate_stats)`` after every backward pass (loggers)."""
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def predict(self, x: Tensor) -> Tensor:
        """The surrogate's differentiable prediction."""
        return self.surrogate.predict(x)  # type: ignore[operator]

    def output(self, blackbox: BlackBox, x: Tensor) -> Tensor:
        return require_real(self.surrogate.output(blackbox, x), "Gated")

    def vjp(self, blackbox: BlackBox, x: Tensor, y: Tensor, grad_y: Tensor) -> Tensor:
        s = self.surrogate.vjp(blackbox, x, y, grad_y)
        probed = self._step % self.every == 0
        cosine, probe_mean = float("nan"), None
        if probed:
            g1 = self.probe.vjp(blackbox, x, y, grad_y)
            g2 = self.probe.vjp(blackbox, x, y, grad_y)
            probe_mean = (g1 + g2) / 2
            s_norm = float(s.double().norm())
            along = float((s.double() * probe_mean.double()).sum()) / s_norm if s_norm > 0 else 0.0
            square = float((g1.double() * g2.double()).sum())  # unbiased for |g|^2
            cosine = along / square**0.5 if square > 0 else float("nan")
            if self._probes == 0:
                self._along, self._square = along, square
            else:
                self._along = self.decay * self._along + (1 - self.decay) * along
                self._square = self.decay * self._square + (1 - self.decay) * square
            ratio = self._along / self._square**0.5 if self._square > 0 else 0.0
            self._fidelity = max(-1.0, min(1.0, ratio))
            self._probes += 1
        fit = self.stats
        agreement = float("nan") if fit is None else float(fit.agreement_before)
        trusted = self._fidelity >= self.threshold and (
            self.min_agreement is None or agreement >= self.min_agreement
        )
        if trusted:
            grad = s
        else:
            self._fallbacks += 1
            if probe_mean is not None and self.fallback is None:
                grad = probe_mean
            else:
                grad = (self.fallback or self.probe).vjp(blackbox, x, y, grad_y)
        if self.training:
            self._step += 1
        self.gate_stats = GateStats(
            step=self._step, fidelity=self._fidelity, probe_cosine=cosine, agreement=agreement,
            trusted=bool(trusted), probes=self._probes, fallbacks=self._fallbacks,
        )  # fmt: skip
        for hook in list(self._hooks.values()):
            hook(self, self.gate_stats)
        return grad

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "step": self._step, "probes": self._probes, "fallbacks": self._fallbacks,
            "fidelity": self._fidelity, "along": self._along, "square": self._square,
        }  # fmt: skip

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._step, self._probes = int(state["step"]), int(state["probes"])
        self._fallbacks, self._fidelity = int(state["fallbacks"]), float(state["fidelity"])
        self._along, self._square = float(state["along"]), float(state["square"])

    def extra_repr(self) -> str:
        return (
            f"every={self.every}, threshold={self.threshold}, "
            f"min_agreement={self.min_agreement}, decay={self.decay}"
        )
