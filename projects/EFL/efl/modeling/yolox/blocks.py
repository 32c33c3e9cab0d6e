"""Building blocks of YOLOX-IP's CSPDarknet and PAFPN: conv+BN+SiLU, Focus, bottleneck, CSP, SPP.

Layer for layer the reference's (ModelTC/EOD) blocks. Against Megvii's YOLOX (docs/yolox_ip.md):

- Focus stacks the four pixel phases as (row 0, col 0), (row 0, col 1), (row 1, col 0),
  (row 1, col 1); Megvii's order is (0, 0), (1, 0), (0, 1), (1, 1);
- submodule names (``conv``/``bn1``, ``conv_block``, ``conv_block1``/``conv_block2``) are the
  reference's, so its released state_dicts load with prefix changes only;
- every BatchNorm has eps 1e-3 and momentum 0.03, the values both set on the built model before
  training; here the blocks construct them so.
"""
from typing import Sequence

import torch
from torch import nn

__all__ = [
    "BN_EPS",
    "BN_MOMENTUM",
    "ConvBNAct",
    "Focus",
    "Bottleneck",
    "CSPLayer",
    "SPP",
    "space_to_depth",
]

# The reference's BatchNorm settings for YOLOX-IP (PyTorch's defaults are 1e-5 / 0.1).
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


class ConvBNAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> SiLU, "same" padding for odd kernels."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            kernel_size: square kernel side (odd).
            stride: convolution stride.
        """
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        )
        # named bn1 as in the reference (Megvii: bn), for checkpoint compatibility
        self.bn1 = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn1(self.conv(x)))


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """
    (N, C, H, W) -> (N, 4C, H/2, W/2): channel ``g * C + c`` of the output at (i, j) is input
    channel c at (2i + r, 2j + s), with phase g = 2r + s, i.e. the phases in the order
    (0, 0), (0, 1), (1, 0), (1, 1) (the reference's; Megvii's swaps the middle two).
    """
    if x.shape[-2] % 2 or x.shape[-1] % 2:
        raise ValueError(f"Focus needs an even height and width, got {tuple(x.shape[-2:])}")
    return torch.cat(
        [x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]], dim=1
    )


class Focus(nn.Module):
    """Space-to-depth (stride 2) then a 3x3 ConvBNAct: the CSPDarknet stem."""

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int = 3):
        """
        Args:
            in_channels: image channels.
            out_channels: stem output channels.
            kernel_size: kernel of the conv after space-to-depth.
        """
        super().__init__()
        self.conv_block = ConvBNAct(
            in_channels=4 * in_channels, out_channels=out_channels, kernel_size=kernel_size
        )

    def forward(self, x):
        return self.conv_block(space_to_depth(x))


class Bottleneck(nn.Module):
    """1x1 ConvBNAct -> 3x3 ConvBNAct, plus the input when ``shortcut`` and the shapes allow."""

    def __init__(
        self, *, in_channels: int, out_channels: int, shortcut: bool = True, expansion: float = 0.5
    ):
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            shortcut: add the input to the output (only when in_channels == out_channels).
            expansion: hidden channels = int(out_channels * expansion).
        """
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = ConvBNAct(in_channels=in_channels, out_channels=hidden, kernel_size=1)
        self.conv2 = ConvBNAct(in_channels=hidden, out_channels=out_channels, kernel_size=3)
        self.use_add = shortcut and in_channels == out_channels

    def forward(self, x):
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """
    Cross-stage partial block (YOLOv5's C3): two 1x1 branches of half the output width, one through
    ``num_blocks`` bottlenecks, concatenated and fused by a 1x1 conv.
    """

    def __init__(
        self, *, in_channels: int, out_channels: int, num_blocks: int, shortcut: bool = True
    ):
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            num_blocks: bottlenecks on the first branch (0 allowed).
            shortcut: residual adds inside the bottlenecks. The reference keeps them everywhere
                except in dark5 (after SPP); Megvii's PAFPN drops them, the reference's does not.
        """
        super().__init__()
        hidden = int(out_channels * 0.5)
        self.conv1 = ConvBNAct(in_channels=in_channels, out_channels=hidden, kernel_size=1)
        self.conv2 = ConvBNAct(in_channels=in_channels, out_channels=hidden, kernel_size=1)
        self.conv3 = ConvBNAct(in_channels=2 * hidden, out_channels=out_channels, kernel_size=1)
        self.m = nn.Sequential(
            *[
                Bottleneck(
                    in_channels=hidden, out_channels=hidden, shortcut=shortcut, expansion=1.0
                )
                for _ in range(num_blocks)
            ]
        )

    def forward(self, x):
        # the bottleneck branch comes first in the concatenation
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class SPP(nn.Module):
    """Spatial pyramid pooling: 1x1 halving conv, max-pools (stride 1) concatenated, 1x1 conv."""

    def __init__(
        self, *, in_channels: int, out_channels: int, kernel_sizes: Sequence[int] = (5, 9, 13)
    ):
        """
        Args:
            in_channels: input channels.
            out_channels: output channels.
            kernel_sizes: max-pool windows (odd); the input is concatenated before them.
        """
        super().__init__()
        hidden = in_channels // 2
        self.conv_block1 = ConvBNAct(in_channels=in_channels, out_channels=hidden, kernel_size=1)
        self.pooling_blocks = nn.ModuleList(
            [nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2) for k in kernel_sizes]
        )
        self.conv_block2 = ConvBNAct(
            in_channels=hidden * (len(kernel_sizes) + 1), out_channels=out_channels, kernel_size=1
        )

    def forward(self, x):
        x = self.conv_block1(x)
        return self.conv_block2(torch.cat([x] + [pool(x) for pool in self.pooling_blocks], dim=1))
