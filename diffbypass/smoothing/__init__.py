r"""The Monte-Carlo smoothing core: one formula behind ES, Perturbed and GuidedES.

For the incoming gradient :math:`v` of the output, perturbed inputs
:math:`x + \sigma\varepsilon_s` and their scores :math:`u_s = \nabla\nu(\varepsilon_s)`
(:math:`u_s = \varepsilon_s` for Gaussian noise), :func:`smoothed_vjp` returns

.. math::
    \hat g = \frac{1}{\sigma}\sum_{\text{groups } G} \frac{1}{|G|}\sum_{s \in G}
    \big(\langle v, f(x + \sigma\varepsilon_s)\rangle - b\big)\, u_s,

with the baseline :math:`b = \langle v, f(x)\rangle` (or 0), optional centred-rank shaping of the
weights, and samples where ``fn`` gave NaN/inf (``Bypass(nonfinite="drop")``) left out of
:math:`|G|`. Every failure is a :class:`~diffbypass.BlackBoxError`. One group is plain ES or a
perturbed optimizer; GuidedES's unbiased split averages its two groups separately.

The estimate has two stages, kept apart for black boxes with several inputs: the weights
(:func:`sample_weights`) come from one evaluation of ``fn`` on all perturbed arguments, and the
combination with the directions (:func:`combine`) is done per argument with its own
:math:`\sigma`.

:class:`Smoothing` is the base of the estimators built on it: the sampler, the options and the
telemetry (:class:`~diffbypass.ESStats`).

Two modules: :mod:`diffbypass.smoothing.formula` (the estimate: functions of tensors) and
:mod:`diffbypass.smoothing.estimator` (the :class:`Smoothing` base class); import every name
from here.
"""

from __future__ import annotations

from diffbypass.smoothing.estimator import Smoothing
from diffbypass.smoothing.formula import (  # SHAPINGS: not public, importable as before
    SHAPINGS,
    Weights,
    centered_ranks,
    combine,
    masked_mean,
    sample_weights,
    smoothed_mean,
    smoothed_vjp,
)

__all__ = [
    "Smoothing", "Weights", "centered_ranks", "combine", "masked_mean", "sample_weights",
    "smoothed_mean", "smoothed_vjp",
]  # fmt: skip
