r"""Surrogates of :class:`~diffbypass_stardp.StarDP`: the thesis' U-Net (``StarSurrogate``, the
default) and a light line-wise convolutional net (``LineSurrogate``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from diffbypass.validation import int_at_least
from diffbypass_stardp._checks import check_lam
from diffbypass_stardp._padding import _pad_star
from diffbypass_stardp.cost import radial_difference

__all__ = ["LineSurrogate", "StarSurrogate"]


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions with star padding, each followed by ReLU."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3)
        self.conv2 = nn.Conv2d(c_out, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(_pad_star(x, 1, 1)))
        return F.relu(self.conv2(_pad_star(x, 1, 1)))


def _pool(x: Tensor) -> Tensor:
    """2x2 max-pooling; an odd size is first padded by one (circular along N, edge along M).

    The edge along M is not materialised: ``ceil_mode`` pools the last point alone, which is the
    maximum of it and its copy (and routes the gradient to it, as the copy's would be).
    """
    if x.shape[-2] % 2:
        x = torch.cat([x, x[..., :1, :]], dim=-2)
    return F.max_pool2d(x, 2, ceil_mode=True)


class StarSurrogate(nn.Module):
    r"""A small U-Net on the warped map that predicts the DP's index on every line.

    The thesis' approximating network :math:`F` (section 5.4): ``depth`` encoder blocks (two
    3x3 convolutions + ReLU, then 2x2 max-pooling, channels doubling from ``base_channels``), a
    bottleneck block, and ``depth`` decoder blocks (2x2 transposed convolution, concatenation
    with the skip connection, two convolutions), then a 1x1 convolution to one channel.
    Convolutions pad *circularly along the lines* (line :math:`N-1` neighbours line 0, as on
    the star) and by edge replication along the points. Odd sizes are padded before pooling and
    upsampled maps cropped to the skip connection, so any :math:`N, M \ge 1` works.

    The output is one logit per point, :math:`(B, N, M)`: ``softmax`` over the last axis is the
    predicted distribution of :math:`v_n`, trained with cross-entropy against
    :class:`~diffbypass_stardp.StarDP`'s indices (``Surrogate(..., fit_loss="ce")``).
    Convolutions commute with rolling along the lines; with pooling, rolling the input by a
    multiple of :math:`2^{\text{depth}}` lines rolls the output the same way whenever :math:`N`
    is a multiple of :math:`2^{\text{depth}}`.

    Args:
        base_channels: channels of the first block (thesis: 8; controls capacity).
        depth: number of pooling levels :math:`\ge 1` (thesis: 3).
        in_channels: input channels; with 1 the input may be :math:`(B, N, M)`.
        lam_input: condition on the DP's smoothness weight :math:`\lambda` (the black box
            ``StarDP()(g, lam)`` with two inputs): ``forward(x, lam)`` then takes
            :math:`\lambda` as a number or a :math:`()`/:math:`(B,)` tensor and adds it as one
            more constant input channel (so it suits weights of the map's scale). ``False``
            (default): one input, the network of the thesis.

    Example:
        >>> import torch
        >>> net = StarSurrogate()
        >>> net(torch.rand(2, 25, 65)).shape
        torch.Size([2, 25, 65])
        >>> StarSurrogate(lam_input=True)(torch.rand(2, 25, 65), torch.tensor([0.0, 0.5])).shape
        torch.Size([2, 25, 65])
    """

    def __init__(
        self,
        base_channels: int = 8,
        depth: int = 3,
        in_channels: int = 1,
        lam_input: bool = False,
    ) -> None:
        super().__init__()
        self.base_channels = int_at_least("base_channels", base_channels, 1)
        self.depth = int_at_least("depth", depth, 1)
        self.in_channels = int_at_least("in_channels", in_channels, 1)
        self.lam_input = _flag("lam_input", lam_input)
        widths = [base_channels * 2**k for k in range(depth + 1)]
        first = in_channels + int(self.lam_input)
        self.encoders = nn.ModuleList(
            _ConvBlock(c_in, c_out) for c_in, c_out in zip([first, *widths[:-2]], widths[:-1])
        )
        self.bottleneck = _ConvBlock(widths[-2], widths[-1])
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2)
            for k in reversed(range(depth))
        )
        self.decoders = nn.ModuleList(
            _ConvBlock(2 * widths[k], widths[k]) for k in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: Tensor, lam: float | Tensor | None = None) -> Tensor:
        """Logits :math:`(B, N, M)` for warped maps :math:`(B, N, M)` or :math:`(B, C, N, M)`
        (and the weight ``lam`` if built with ``lam_input=True``)."""
        x = _with_lam(_channels_first(x, self.in_channels), lam, self.lam_input)
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = _pool(x)
        x = self.bottleneck(x)
        for upsample, decoder, skip in zip(self.upsamples, self.decoders, reversed(skips)):
            x = upsample(x)[..., : skip.shape[-2], : skip.shape[-1]]
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(x)[:, 0]

    def extra_repr(self) -> str:
        return (
            f"base_channels={self.base_channels}, depth={self.depth}, "
            f"in_channels={self.in_channels}" + (", lam_input=True" if self.lam_input else "")
        )


class LineSurrogate(nn.Module):
    r"""A light surrogate: a few convolutions over (line, point), no pooling, no U-Net.

    The DP's smoothed index on line :math:`n` depends on where the map drops along that line
    and along a few neighbouring lines (continuity :math:`\delta`, the moving average over
    about :math:`N/4` lines). A softmax over the points already turns a *local* edge score into
    the choice of one point per line, so a short stack of small convolutions can play the role
    of the U-Net at a fraction of its FLOPs.

    Input features: the map :math:`g` and its radial difference
    :func:`~diffbypass_stardp.radial_difference` (the DP's default cost), stacked as two
    channels. Then ``layers`` convolutions of ``channels`` channels with kernel
    :math:`(k_N, k_M)` = ``kernel`` and ReLU, padded *circularly along the lines* (line
    :math:`N-1` neighbours line 0) and with zeros along the points (the point beyond the last
    one is background, as in ``radial_difference``); convolution ``l`` is dilated by
    :math:`2^l` along the lines up to ``max_dilation``, so the context along the lines grows
    geometrically (defaults: dilations 1, 2, 4, 4, i.e. :math:`\pm 11` lines, and
    :math:`\pm 8` points). A 1x1 convolution gives one logit per point.

    Its fit step is cheaper than the default ``StarSurrogate``'s (a few thousand parameters
    instead of about 120,000); how well it agrees with ``StarDP`` after fitting, and what
    ``max_dilation=1`` with ``kernel=(3, 3)`` trades, is measured in
    ``benchmarks/stardp_surrogates/README.md``.

    Same contract as :class:`StarSurrogate`: logits :math:`(B, N, M)`, trained with
    cross-entropy against :class:`~diffbypass_stardp.StarDP`'s indices
    (``Surrogate(LineSurrogate(), fit_loss="ce")``). Equivariant to rolling the input along the
    lines (any shift, any :math:`N`).

    Args:
        channels: width of every convolution.
        layers: number of convolutions :math:`\ge 1`.
        kernel: ``(k_N, k_M)``, odd sizes.
        max_dilation: largest dilation along the lines (1: none).
        in_channels: channels of the map; with 1 the input may be :math:`(B, N, M)`.
        lam_input: condition on the DP's smoothness weight, as for :class:`StarSurrogate`
            (one more constant channel after the map and its radial difference).

    Example:
        >>> import torch
        >>> net = LineSurrogate()
        >>> net(torch.rand(2, 25, 65)).shape
        torch.Size([2, 25, 65])
        >>> sum(p.numel() for p in net.parameters())
        3161
    """

    def __init__(
        self,
        channels: int = 8,
        layers: int = 4,
        kernel: tuple[int, int] = (3, 5),
        max_dilation: int = 4,
        in_channels: int = 1,
        lam_input: bool = False,
    ) -> None:
        super().__init__()
        self.channels = int_at_least("channels", channels, 1)
        self.layers = int_at_least("layers", layers, 1)
        if (
            not isinstance(kernel, (tuple, list)) or len(kernel) != 2
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 and k % 2
                       for k in kernel)
        ):
            raise ValueError(f"kernel must be (k_N, k_M) with odd positive integers; got {kernel!r}")
        self.kernel = (int(kernel[0]), int(kernel[1]))
        self.max_dilation = int_at_least("max_dilation", max_dilation, 1)
        self.in_channels = int_at_least("in_channels", in_channels, 1)
        self.lam_input = _flag("lam_input", lam_input)
        self.dilations = [min(2**k, self.max_dilation) for k in range(self.layers)]
        widths = [2 * in_channels + int(self.lam_input)] + [channels] * layers
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, self.kernel, dilation=(d, 1))
            for c_in, c_out, d in zip(widths[:-1], widths[1:], self.dilations)
        )
        self.head = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor, lam: float | Tensor | None = None) -> Tensor:
        """Logits :math:`(B, N, M)` for warped maps :math:`(B, N, M)` or :math:`(B, C, N, M)`
        (and the weight ``lam`` if built with ``lam_input=True``)."""
        x = _channels_first(x, self.in_channels)
        b, c, n, m = x.shape
        x = torch.cat([x, radial_difference(x.reshape(b * c, n, m)).reshape(b, c, n, m)], dim=1)
        x = _with_lam(x, lam, self.lam_input)
        k_n, k_m = self.kernel
        for conv, d in zip(self.convs, self.dilations):
            pad_n = d * (k_n // 2)
            if pad_n:
                x = _circular_lines(x, pad_n)
            x = F.relu(conv(F.pad(x, (k_m // 2, k_m // 2, 0, 0))))
        return self.head(x)[:, 0]

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, layers={self.layers}, kernel={self.kernel}, "
            f"max_dilation={self.max_dilation}, in_channels={self.in_channels}"
            + (", lam_input=True" if self.lam_input else "")
        )


def _circular_lines(x: Tensor, pad: int) -> Tensor:
    """Pad ``(B, C, N, M)`` circularly along the lines by ``pad`` (any ``pad``, even ``> N``)."""
    n = x.shape[-2]
    idx = torch.arange(-pad, n + pad, device=x.device) % n
    return x.index_select(-2, idx)


def _channels_first(x: Tensor, in_channels: int) -> Tensor:
    """Warped maps as :math:`(B, C, N, M)`: a channel axis added to :math:`(B, N, M)` if C = 1."""
    if x.ndim == 3 and in_channels == 1:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != in_channels:
        layout = "(B, N, M) or (B, 1, N, M)" if in_channels == 1 else f"(B, {in_channels}, N, M)"
        raise ValueError(f"x must have shape {layout}; got {tuple(x.shape)}")
    return x


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return value


def _with_lam(x: Tensor, lam: float | Tensor | None, enabled: bool) -> Tensor:
    """``x`` :math:`(B, C, N, M)` with the weight ``lam`` appended as a constant channel
    (``enabled``), or ``x`` itself (no weight expected)."""
    if not enabled:
        if lam is not None:
            raise ValueError(
                "lam was given but this surrogate does not take it; build it with lam_input=True"
            )
        return x
    if lam is None:
        raise ValueError("lam is required: this surrogate was built with lam_input=True")
    b, _, n, m = x.shape
    check_lam(lam, b)
    weight = torch.as_tensor(lam).to(dtype=x.dtype, device=x.device)  # gradients reach lam
    return torch.cat([x, weight.reshape(-1, 1, 1, 1).expand(b, 1, n, m)], dim=1)
