r"""A CPU-sized U-Net (Ronneberger et al., 2015), the network of every method of the example.

Differences from the original U-Net, all for CPU budgets and convenience:

* padded 3x3 convolutions, so the output map has the input's size (no 396-px input padding);
* ``base_channels=8`` and ``depth=4`` by default instead of 64 and 4: 0.45 M instead of 31 M
  parameters (its time per batch: ``docs/lv_example.md``, "Default hyperparameters");
* group normalisation after each convolution by default (``norm``): it behaves the same in
  training and eval mode, unlike batch statistics of a 10-image training set;
* bilinear up-sampling followed by a 1x1 convolution instead of transposed convolutions.

The output is one channel of raw values (logits for the pixel loss of ``unet``; the *output map*
that EDPCNN warps onto the star).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from diffbypass.validation import int_at_least, one_of
from lvseg.train_choices import NORMS

__all__ = ["UNet"]


#: The most convolution weights a :class:`UNet` may have (checked before allocating them): four
#: times the thesis' U-Net (64 base channels, depth 4: 29 M).
MAX_PARAMETERS = 120_000_000


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(8, channels // 2) or 1, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def _block(c_in: int, c_out: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=norm == "none"),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    r"""U-Net with padded convolutions: :math:`(B, C_{in}, H, W) \to (B, C_{out}, H, W)`.

    Args:
        in_channels: image channels.
        out_channels: output channels (1 for a foreground logit / output map).
        base_channels: channels of the first level; level :math:`l` has
            ``base_channels * 2**l``.
        depth: number of 2x down-samplings; :math:`H` and :math:`W` must be divisible by
            :math:`2^{depth}`.
        norm: ``"group"`` (GroupNorm, up to 8 groups), ``"batch"`` or ``"none"``.

    Raises:
        ValueError: on a bad argument, or if the network would have more than
            :data:`MAX_PARAMETERS` weights.

    Example:
        >>> net = UNet(base_channels=4, depth=2)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        base_channels: int = 8,
        depth: int = 4,
        norm: str = "group",
    ) -> None:
        super().__init__()
        one_of("norm", norm, NORMS)
        for name, value, low in (("in_channels", in_channels, 1), ("out_channels", out_channels, 1),
                                 ("base_channels", base_channels, 1), ("depth", depth, 0)):
            int_at_least(name, value, low)
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth + 1)]
        weights = 9 * (in_channels * widths[0] + widths[0] ** 2) + sum(  # convolutions: the bulk
            9 * (widths[i] * widths[i + 1] + widths[i + 1] ** 2 + 3 * widths[i] ** 2)
            + widths[i + 1] * widths[i] for i in range(depth))
        if weights > MAX_PARAMETERS:
            raise ValueError(
                f"a U-Net with base_channels={base_channels} and depth={depth} would have "
                f"{weights / 1e6:.0f} M weights, more than the {MAX_PARAMETERS // 10**6} M "
                "allowed; lower base_channels (--unet-channels) or depth (--unet-depth)"
            )
        self.down = nn.ModuleList([_block(in_channels, widths[0], norm)])
        self.down.extend(_block(widths[i], widths[i + 1], norm) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.reduce = nn.ModuleList(nn.Conv2d(widths[i + 1], widths[i], 1) for i in range(depth))
        self.up = nn.ModuleList(_block(2 * widths[i], widths[i], norm) for i in range(depth))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"x must have shape (B, C, H, W); got {tuple(x.shape)}")
        factor = 2**self.depth
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ValueError(
                f"H and W must be divisible by 2**depth = {factor}; got {tuple(x.shape[-2:])}"
            )
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for level in reversed(range(self.depth)):
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.up[level](torch.cat([skips.pop(), self.reduce[level](x)], dim=1))
        return self.head(x)
