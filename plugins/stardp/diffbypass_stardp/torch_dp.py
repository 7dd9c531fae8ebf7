r"""The cyclic DP recursion, written once in torch over a semiring.

This is the straightforward vectorised formulation of the thesis' Algorithm 2: for every start
state :math:`s = v_0` at once, a chain DP runs over the lines,

.. math::

    \alpha_0[s, j] = c[0, s]\,[j = s], \qquad
    \alpha_n[s, j] = c[n, j] \otimes \bigoplus_{|k - j| \le \delta}
    \bigl(\alpha_{n-1}[s, k] \otimes \lambda |k - j|\bigr),

and the closure back to the start gives the value

.. math::

    Z = \bigoplus_s \bigoplus_{|k - s| \le \delta} \bigl(\alpha_{N-1}[s, k] \otimes
    \lambda |k - s|\bigr).

The smoothness penalty :math:`\lambda |k - j|` (:math:`\lambda \ge 0`, one per contour) is
added to each of the :math:`2\delta + 1` alternatives before :math:`\oplus` (:func:`_penalised`);
with :math:`\lambda = 0` given as a number nothing is added.

With :class:`~diffbypass_stardp.HardMin` this is the exact DP (:math:`O(N M^2 \delta)` work and
:math:`O(N M^2)` back-pointer memory per contour, fine on a GPU, slow on a CPU compared with
:func:`~diffbypass_stardp.dp_solve`); with :class:`~diffbypass_stardp.SoftMin` it is the soft
DP behind :func:`~diffbypass_stardp.soft_dp`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from diffbypass.validation import int_at_least
from diffbypass_stardp import _config
from diffbypass_stardp._checks import check_cost, check_magnitude, check_penalty_range, lam_tensor
from diffbypass_stardp.semiring import HardMin, Semiring

__all__ = ["dp_torch", "torch_dp_bytes"]


def _shifts(alpha: Tensor, delta: int, fill: float) -> list[Tensor]:
    """``2 delta + 1`` views; entry ``[..., j]`` of view ``d`` is ``alpha[..., j + d - delta]``."""
    m = alpha.shape[-1]
    padded = F.pad(alpha, (delta, delta), value=fill)
    return [padded[..., d : d + m] for d in range(2 * delta + 1)]


def _penalised(options: list[Tensor], lam: Tensor | None) -> list[Tensor]:
    """Option ``d`` (a step of ``|d - delta|`` indices) plus ``lam * |d - delta|``; ``lam``
    is ``(B,)`` and broadcasts over the trailing dimensions (unchanged if ``None``)."""
    if lam is None:
        return options
    delta = len(options) // 2
    scale = lam.reshape(-1, *([1] * (options[0].ndim - 1)))
    return [o if d == delta else o + scale * abs(d - delta) for d, o in enumerate(options)]


def _first_equal(options: list[Tensor], best: Tensor) -> Tensor:
    """Index of the first option equal to ``best`` (the hard minimum is one of them)."""
    dtype = torch.uint8 if len(options) <= 256 else torch.int32
    choice = torch.full(best.shape, len(options) - 1, dtype=dtype, device=best.device)
    for d in range(len(options) - 2, -1, -1):
        choice = torch.where(options[d] == best, d, choice)
    return choice


def dp_torch(
    cost: Tensor,
    delta: int = 1,
    semiring: Semiring | None = None,
    lam: float | Tensor = 0.0,
) -> tuple[Tensor, Tensor | None]:
    r"""Cyclic star-pattern DP in torch over a semiring: value and (hard) optimal indices.

    Args:
        cost: unary costs :math:`(B, N, M)`, floating tensor on any device, :math:`N \ge 3`,
            :math:`M \ge 2`; differentiable (soft semiring).
        delta: largest index change :math:`\delta \ge 0` between neighbouring lines.
        semiring: :class:`~diffbypass_stardp.HardMin` (default) or
            :class:`~diffbypass_stardp.SoftMin`.
        lam: smoothness weight :math:`\lambda \ge 0` of the penalty
            :math:`\lambda |v_n - v_{(n+1) \bmod N}|`: a number or a tensor of shape
            :math:`()` or :math:`(B,)`, used in ``cost``'s dtype; differentiable (soft
            semiring). 0 (default) adds nothing.

    Returns:
        ``(value, indices)``: value :math:`(B,)` (the minimal energy, or the soft minimum
        :math:`-\tau \log \sum_v e^{-E(v)/\tau}` over feasible contours); for ``HardMin`` an
        optimal contour :math:`(B, N)` int64, otherwise ``None``. Among tied optima ``HardMin``
        returns the contour with the smallest :math:`v_0`, then the smallest :math:`v_{N-1}`,
        :math:`v_{N-2}`, ... (back-tracking order), which can differ from
        :func:`~diffbypass_stardp.dp_solve`'s lexicographic rule; energies agree. The energy
        includes the penalty.

    Memory: about :func:`torch_dp_bytes` per contour (HardMin, :math:`N = 25, M = 65`,
    float32: 0.3 MiB; SoftMin with autograd: 4 MiB). Batches are solved in chunks of at most
    ``diffbypass_stardp._config.TORCH_CHUNK_BYTES`` (256 MiB) and concatenated; the results are
    identical to one pass (contours are independent).

    Range: sums of costs stay below the semiring's stand-in for :math:`+\infty`
    (:math:`\text{finfo.max} / 16`) only if :math:`\max|c| \le \text{finfo.max} / (32 N)`:
    :math:`4.2 \cdot 10^{35}` for float32 and :math:`2.2 \cdot 10^{305}` for float64 at
    :math:`N = 25`. Larger costs raise a ``ValueError`` (rescale them, or use float64); so do
    penalties :math:`\lambda \delta > \text{finfo.max} / (64 N)`.

    Example:
        >>> import torch
        >>> cost = torch.zeros(1, 4, 5)
        >>> cost[0, :, 3] = -1.0
        >>> cost[0, 2, 1] = -10.0
        >>> dp_torch(cost, delta=1)
        (tensor([-11.]), tensor([[3, 2, 1, 2]]))
    """
    if not isinstance(cost, Tensor):
        raise TypeError(f"cost must be a torch.Tensor; got {type(cost).__name__}")
    n_batch, n_lines, m = check_cost(cost)
    if not cost.is_floating_point():
        raise ValueError(f"cost must be a floating tensor; got dtype {cost.dtype}")
    delta = min(int_at_least("delta", delta, 0), m - 1)
    semiring = HardMin() if semiring is None else semiring
    if not isinstance(semiring, Semiring):
        raise TypeError(
            f"semiring must be a Semiring (HardMin, SoftMin); got {type(semiring).__name__}"
        )
    peak = float(cost.detach().abs().max()) if cost.numel() else 0.0
    if not math.isfinite(peak):
        raise ValueError("cost must be finite; got NaN or inf")
    limit = torch.finfo(cost.dtype).max / (32 * n_lines)
    check_magnitude("cost", peak, limit, cost.dtype, n_lines)
    weights = lam_tensor(lam, n_batch, cost)
    if weights is not None and n_batch:
        check_penalty_range(float(weights.detach().max()), delta, limit / 2, n_lines)
    chunk = _chunk_size(n_lines, m, delta, cost.dtype, semiring)
    if n_batch <= chunk:
        return _dp_torch(cost, delta, semiring, weights)
    parts = [
        _dp_torch(cost[i : i + chunk], delta, semiring,
                  None if weights is None else weights[i : i + chunk])
        for i in range(0, n_batch, chunk)
    ]
    value = torch.cat([p[0] for p in parts])
    if not semiring.selects:
        return value, None
    return value, torch.cat([p[1] for p in parts])  # type: ignore[misc]


def torch_dp_bytes(n_lines: int, m: int, delta: int, dtype: torch.dtype, soft: bool) -> int:
    r"""Approximate peak memory in bytes of :func:`dp_torch` for one contour (upper estimate).

    ``soft=False``: the hard DP's back-pointers (:math:`N M (M + 2\delta)` bytes) and a few
    :math:`M (M + 2\delta)` tables; ``soft=True``: what the soft DP keeps for autograd,
    :math:`(4\delta + 6)` tables per line (:func:`~diffbypass_stardp.soft_dp`).

    Example:
        >>> round(torch_dp_bytes(25, 65, 1, torch.float32, soft=True) / 2**20, 1)   # MiB
        4.2
    """
    table = m * (m + 2 * delta)
    itemsize = torch.finfo(dtype).bits // 8
    if soft:
        return (4 * delta + 6) * n_lines * table * itemsize
    return n_lines * table + 12 * table * itemsize


def _chunk_size(n_lines: int, m: int, delta: int, dtype: torch.dtype, semiring: Semiring) -> int:
    """Contours per chunk that fit in ``_config.TORCH_CHUNK_BYTES`` (at least 1)."""
    per = torch_dp_bytes(n_lines, m, delta, dtype, soft=not semiring.selects)
    return max(1, _config.TORCH_CHUNK_BYTES // per)


def _dp_torch(
    cost: Tensor, delta: int, semiring: Semiring, lam: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """:func:`dp_torch` on validated arguments, in one pass."""
    n_batch, n_lines, m = cost.shape
    fill = semiring.unreachable(cost.dtype)

    eye = torch.eye(m, dtype=torch.bool, device=cost.device)
    alpha = torch.where(eye, cost[:, 0, None, :], fill)  # (B, S, J): start s, state j
    choices: list[Tensor] = []
    for n in range(1, n_lines):
        options = _penalised(_shifts(alpha, delta, fill), lam)
        best = semiring.plus(*options)
        if semiring.selects:
            choices.append(_first_equal(options, best))
        alpha = best + cost[:, n, None, :]
    # closure: [b, s] over |k - s| <= delta of alpha[b, s, k]; then over the starts s
    ring = _penalised([o.diagonal(dim1=1, dim2=2) for o in _shifts(alpha, delta, fill)], lam)
    closed = semiring.plus(*ring)  # (B, S)
    value = semiring.reduce(closed, dim=-1)  # (B,)
    if not semiring.selects:
        return value, None

    last_choice = _first_equal(ring, closed)
    start = (closed == value[:, None]).int().argmax(dim=-1)  # first optimal start
    rows = torch.arange(n_batch, device=cost.device)
    v = torch.empty((n_batch, n_lines), dtype=torch.long, device=cost.device)
    v[:, n_lines - 1] = start + last_choice[rows, start].long() - delta
    for n in range(n_lines - 1, 0, -1):
        v[:, n - 1] = v[:, n] + choices[n - 1][rows, start, v[:, n]].long() - delta
    return value, v
