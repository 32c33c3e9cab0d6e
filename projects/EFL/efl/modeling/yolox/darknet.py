"""CSPDarknet, the YOLOX-IP backbone (docs/yolox_ip.md): Focus stem, four stride-2 stages, SPP."""
from typing import Sequence

from torch import nn

from detectron2.modeling.backbone import Backbone

from .blocks import SPP, ConvBNAct, CSPLayer, Focus

__all__ = ["CSPDarknet"]

_STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


class CSPDarknet(Backbone):
    """
    YOLOX's CSPDarknet as the reference builds it. ``depth`` and ``width`` are the only size knobs:
    S = (0.33, 0.50), M = (0.67, 0.75), L = (1.0, 1.0), X = (1.33, 1.25). With base width
    b = int(64 * width) and base depth n = max(round(3 * depth), 1) the stages are

    ======  ======  ============  =========================================
    stage   stride  channels      blocks
    ======  ======  ============  =========================================
    stem    2       b             Focus (space-to-depth, 3x3 conv)
    dark2   4       2b            3x3/s2 conv, CSP(n), residual
    dark3   8       4b            3x3/s2 conv, CSP(3n), residual
    dark4   16      8b            3x3/s2 conv, CSP(3n), residual
    dark5   32      16b           3x3/s2 conv, SPP(5, 9, 13), CSP(n), no residual
    ======  ======  ============  =========================================
    """

    def __init__(
        self,
        *,
        depth: float,
        width: float,
        out_features: Sequence[str] = ("dark3", "dark4", "dark5"),
        in_channels: int = 3,
    ):
        """
        Args:
            depth: depth multiplier (number of bottlenecks per CSP layer).
            width: width multiplier (channels).
            out_features: stages to return, from "stem", "dark2", ..., "dark5".
            in_channels: image channels.
        """
        super().__init__()
        unknown = [name for name in out_features if name not in _STAGES]
        if unknown or not out_features:
            raise ValueError(
                f"out_features must be a non-empty subset of {_STAGES}, got {out_features}"
            )
        base = int(64 * width)
        n = max(round(3 * depth), 1)
        if base < 1:
            raise ValueError(f"width={width} gives no channels")

        self.stem = Focus(in_channels=in_channels, out_channels=base)
        self.dark2 = self._stage(base, 2 * base, num_blocks=n)
        self.dark3 = self._stage(2 * base, 4 * base, num_blocks=3 * n)
        self.dark4 = self._stage(4 * base, 8 * base, num_blocks=3 * n)
        self.dark5 = nn.Sequential(
            ConvBNAct(in_channels=8 * base, out_channels=16 * base, kernel_size=3, stride=2),
            SPP(in_channels=16 * base, out_channels=16 * base),
            CSPLayer(in_channels=16 * base, out_channels=16 * base, num_blocks=n, shortcut=False),
        )

        channels = [base, 2 * base, 4 * base, 8 * base, 16 * base]
        self._out_features = list(out_features)
        self._out_feature_channels = dict(zip(_STAGES, channels))
        self._out_feature_strides = {name: 2 ** (i + 1) for i, name in enumerate(_STAGES)}

    @staticmethod
    def _stage(in_channels: int, out_channels: int, *, num_blocks: int) -> nn.Sequential:
        return nn.Sequential(
            ConvBNAct(in_channels=in_channels, out_channels=out_channels, kernel_size=3, stride=2),
            CSPLayer(in_channels=out_channels, out_channels=out_channels, num_blocks=num_blocks),
        )

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, x):
        """
        Args:
            x: (N, C, H, W) images, H and W even.

        Returns:
            dict: stage name -> (N, C_stage, H / stride, W / stride), for ``out_features``.
        """
        outputs = {}
        for name in _STAGES:
            x = getattr(self, name)(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs
