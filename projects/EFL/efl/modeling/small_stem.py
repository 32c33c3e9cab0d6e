"""A ResNet stem with a 3x3 first conv, for the CPU demo model."""
import fvcore.nn.weight_init as weight_init
import torch.nn.functional as F

from detectron2.layers import CNNBlockBase, Conv2d, get_norm

__all__ = ["SmallStem"]


class SmallStem(CNNBlockBase):
    """
    Detectron2's ``BasicStem`` (conv/s2, ReLU, max-pool/s2; stride 4) with a 3x3 instead of a 7x7
    conv: at 160 px the 7x7 stem alone costs as much as a narrow ResNet-18's four stages.
    """

    def __init__(self, *, in_channels: int = 3, out_channels: int = 16, norm="BN"):
        """
        Args:
            in_channels: image channels.
            out_channels: channels of the stem output (input of res2).
            norm: norm after the conv, as accepted by :func:`detectron2.layers.get_norm`.
        """
        super().__init__(in_channels, out_channels, 4)
        self.conv1 = Conv2d(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=2,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        weight_init.c2_msra_fill(self.conv1)

    def forward(self, x):
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
