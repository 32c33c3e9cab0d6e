"""YOLOX's path-aggregation FPN over CSPDarknet, as a Detectron2 backbone (docs/yolox_ip.md)."""
from typing import Sequence

import torch
import torch.nn.functional as F

from detectron2.modeling.backbone import Backbone

from .blocks import ConvBNAct, CSPLayer

__all__ = ["YOLOXPAFPN"]


class YOLOXPAFPN(Backbone):
    """
    The bottom-up network (``bottom_up``, a CSPDarknet) followed by YOLOX's PAN: a top-down pass
    (C5 -> C4 -> C3) then a bottom-up pass (P3 -> P4 -> P5), each merge a concatenation followed by
    a CSP layer. The outputs "p3", "p4", "p5" have the channels and strides of the three inputs.

    Unlike Megvii's PAFPN, the CSP layers here keep their residual adds (the reference's default);
    the submodule names are the reference's, so its ``neck.*`` weights load as ``backbone.*``.
    """

    def __init__(
        self,
        *,
        bottom_up: Backbone,
        depth: float,
        in_features: Sequence[str] = ("dark3", "dark4", "dark5"),
    ):
        """
        Args:
            bottom_up: backbone whose ``in_features`` outputs are C3, C4, C5 (finest first), each
                of twice the stride of the previous.
            depth: depth multiplier; each CSP layer has round(3 * depth) bottlenecks.
            in_features: the three bottom-up outputs to use, finest first.
        """
        super().__init__()
        if len(in_features) != 3:
            raise ValueError(f"YOLOXPAFPN takes three input features, got {list(in_features)}")
        input_shapes = bottom_up.output_shape()
        missing = [name for name in in_features if name not in input_shapes]
        if missing:
            raise ValueError(
                f"in_features {missing} are not outputs of the bottom-up network "
                f"{sorted(input_shapes)}"
            )
        c3, c4, c5 = (input_shapes[name].channels for name in in_features)
        strides = [input_shapes[name].stride for name in in_features]
        if strides[1] != 2 * strides[0] or strides[2] != 2 * strides[1]:
            raise ValueError(f"in_features must have strides s, 2s, 4s, got {strides}")
        n = round(3 * depth)

        self.bottom_up = bottom_up
        self.in_features = list(in_features)
        # top-down
        self.lateral_conv0 = ConvBNAct(in_channels=c5, out_channels=c4, kernel_size=1)
        self.C3_p4 = CSPLayer(in_channels=2 * c4, out_channels=c4, num_blocks=n)
        self.reduce_conv1 = ConvBNAct(in_channels=c4, out_channels=c3, kernel_size=1)
        self.C3_p3 = CSPLayer(in_channels=2 * c3, out_channels=c3, num_blocks=n)
        # bottom-up
        self.bu_conv2 = ConvBNAct(in_channels=c3, out_channels=c3, kernel_size=3, stride=2)
        self.C3_n3 = CSPLayer(in_channels=2 * c3, out_channels=c4, num_blocks=n)
        self.bu_conv1 = ConvBNAct(in_channels=c4, out_channels=c4, kernel_size=3, stride=2)
        self.C3_n4 = CSPLayer(in_channels=2 * c4, out_channels=c5, num_blocks=n)

        self._out_features = ["p3", "p4", "p5"]
        self._out_feature_channels = dict(zip(self._out_features, (c3, c4, c5)))
        self._out_feature_strides = dict(zip(self._out_features, strides))

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, x):
        """
        Args:
            x: (N, 3, H, W) images, H and W multiples of ``size_divisibility``.

        Returns:
            dict: "p3", "p4", "p5" -> (N, C_l, H / s_l, W / s_l).
        """
        features = self.bottom_up(x)
        c3, c4, c5 = (features[name] for name in self.in_features)

        lateral5 = self.lateral_conv0(c5)  # (N, c4, H5, W5), reused by the bottom-up pass
        p4 = self.C3_p4(torch.cat([_upsample_to(lateral5, c4), c4], dim=1))
        lateral4 = self.reduce_conv1(p4)  # (N, c3, H4, W4), reused by the bottom-up pass
        p3 = self.C3_p3(torch.cat([_upsample_to(lateral4, c3), c3], dim=1))

        n4 = self.C3_n3(torch.cat([self.bu_conv2(p3), lateral4], dim=1))
        n5 = self.C3_n4(torch.cat([self.bu_conv1(n4), lateral5], dim=1))
        return {"p3": p3, "p4": n4, "p5": n5}


def _upsample_to(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    # nearest, to the exact size of the finer map (the reference's choice; equal to scale 2 when
    # the input is padded to a multiple of 32)
    return F.interpolate(x, size=reference.shape[-2:], mode="nearest")
