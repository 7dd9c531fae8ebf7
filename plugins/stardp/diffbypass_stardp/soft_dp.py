r"""Soft DP: a differentiable relaxation of the star-pattern DP (no estimator needed)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from diffbypass.validation import int_at_least
from diffbypass_stardp._checks import check_cost, lam_tensor
from diffbypass_stardp.semiring import SoftMin
from diffbypass_stardp.torch_dp import _chunk_size, dp_torch

__all__ = ["SoftDPResult", "soft_dp"]


class SoftDPResult(NamedTuple):
    """What :func:`soft_dp` returns."""

    #: Expected indices :math:`\mathbb{E}[v_n] = \sum_j j\,\mu[n, j]`, shape :math:`(B, N)`.
    indices: Tensor
    #: Soft energy :math:`-\tau \log \sum_v e^{-E(v)/\tau}` over feasible contours, :math:`(B,)`.
    energy: Tensor
    #: Marginals :math:`\mu[b, n, j] = p(v_n = j)`, shape :math:`(B, N, M)`; rows sum to 1.
    marginals: Tensor


def soft_dp(
    cost: Tensor | np.ndarray,
    delta: int = 1,
    temperature: float = 1.0,
    lam: float | Tensor = 0.0,
) -> SoftDPResult:
    r"""The cyclic star-pattern DP with :math:`\min` replaced by a soft minimum.

    Feasible contours :math:`v` (closed, :math:`|v_n - v_{(n+1) \bmod N}| \le \delta`) get the
    Gibbs distribution :math:`p(v) \propto \exp(-E(v)/\tau)` with
    :math:`E(v) = \sum_n \bigl(c[n, v_n] + \lambda |v_n - v_{(n+1) \bmod N}|\bigr)`
    (:math:`\lambda = 0` by default). The soft energy is

    .. math::

        E_\tau = -\tau \log \sum_{v \text{ feasible}} e^{-E(v)/\tau}
               = -\tau \log \sum_s \sum_{|k - s| \le \delta} e^{-\alpha_{N-1}[s, k]/\tau},

    computed exactly by summing over the start state :math:`s = v_0` the chain DP that starts at
    :math:`s` and ends within :math:`\delta` of it (:func:`~diffbypass_stardp.dp_torch` with
    :class:`~diffbypass_stardp.SoftMin`). The marginals are its gradient,
    :math:`\mu[n, j] = \partial E_\tau / \partial c[n, j] = p(v_n = j)`, and the expected
    indices :math:`\sum_j j\,\mu[n, j]` are a smooth contour. As :math:`\tau \to 0` they tend
    to the hard DP's indices (when the optimum is unique) and :math:`E_\tau` to the minimal
    energy; :math:`\min_v E(v) - \tau \log |\mathcal V| \le E_\tau \le \min_v E(v)`.
    With respect to :math:`\lambda` the soft energy's derivative is the expected total
    variation, :math:`\partial E_\tau / \partial \lambda = \mathbb{E}_p \sum_n
    |v_n - v_{(n+1) \bmod N}|`: a ``lam`` tensor that requires grad gets its gradient
    through everything returned, like ``cost``.

    Everything returned is differentiable with respect to ``cost`` (second-order autograd
    through the recursion), so a loss on the expected indices trains whatever produced the
    cost. Cost: :math:`O(N M^2 \delta)` time and memory per contour, like the thesis'
    Algorithm 2: about 4 MiB per contour at :math:`N = 25, M = 65` in float32
    (:func:`~diffbypass_stardp.torch_dp_bytes`). Large batches are solved in chunks of at most
    256 MiB (``diffbypass_stardp._config.TORCH_CHUNK_BYTES``) with identical results; when
    ``cost`` requires grad the graph of every chunk is kept for second-order autograd, so the
    memory is then that of the whole batch. Costs must satisfy the range of
    :func:`~diffbypass_stardp.dp_torch` (:math:`\max|c| \le \text{finfo.max} / (32 N)`).

    Args:
        cost: :math:`(B, N, M)` costs, :math:`N \ge 3`, :math:`M \ge 2`; a tensor (any device;
            the graph is kept if it requires grad) or a NumPy array. Integer costs become the
            default float dtype, float16/bfloat16 become float32; NaN/inf are rejected.
        delta: largest index change :math:`\delta \ge 0` between neighbouring lines.
        temperature: :math:`\tau > 0`.
        lam: smoothness weight :math:`\lambda \ge 0`: a number or a tensor of shape
            :math:`()` or :math:`(B,)` (used in the cost's dtype, on its device), as for
            :func:`~diffbypass_stardp.dp_torch`.

    Returns:
        :class:`SoftDPResult` ``(indices, energy, marginals)`` as tensors.

    Example:
        >>> import torch
        >>> cost = torch.zeros(1, 4, 5)
        >>> cost[0, :, 3] = -1.0
        >>> cost[0, 2, 1] = -10.0
        >>> soft_dp(cost, delta=1, temperature=0.01).indices.round()
        tensor([[3., 2., 1., 2.]])
    """
    _, _, m = check_cost(cost)
    delta = int_at_least("delta", delta, 0)
    semiring = SoftMin(temperature)
    c = torch.as_tensor(cost)
    if c.dtype in (torch.float16, torch.bfloat16):
        c = c.float()
    elif not c.is_floating_point():
        if c.dtype == torch.bool or c.dtype.is_complex:
            raise ValueError(f"cost must hold real numbers; got dtype {c.dtype}")
        c = c.to(torch.get_default_dtype())
    if not bool(torch.isfinite(c.detach()).all()):
        raise ValueError("cost must be finite; got NaN or inf")

    weights = lam_tensor(lam, len(c), c)
    lam_grad = weights is not None and weights.requires_grad
    keep_graph = (c.requires_grad or lam_grad) and torch.is_grad_enabled()
    chunk = _chunk_size(c.shape[1], m, min(delta, m - 1), c.dtype, semiring)
    energies, marginal_parts = [], []
    for i in range(0, max(len(c), 1), chunk):  # contours are independent: identical results
        with torch.enable_grad():
            part = c[i : i + chunk]
            leaf = part if keep_graph and part.requires_grad else part.detach().requires_grad_(True)
            energy, _ = dp_torch(leaf, delta, semiring,
                                 0.0 if weights is None else weights[i : i + chunk])
            (marginals,) = torch.autograd.grad(energy.sum(), leaf, create_graph=keep_graph)
        energies.append(energy if keep_graph else energy.detach())
        marginal_parts.append(marginals)
    energy = torch.cat(energies) if len(energies) > 1 else energies[0]
    marginals = torch.cat(marginal_parts) if len(marginal_parts) > 1 else marginal_parts[0]
    positions = torch.arange(m, dtype=marginals.dtype, device=marginals.device)
    return SoftDPResult((marginals * positions).sum(dim=-1), energy, marginals)
