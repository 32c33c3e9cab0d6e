"""The reference's "frozen BN" (EOD ``freeze_bn``): an ``nn.BatchNorm2d`` held in eval mode, so its
running statistics stay fixed while its affine weight and bias still train
(docs/improved_baseline.md §1)."""
from torch import nn

from detectron2.layers import FrozenBatchNorm2d

__all__ = ["FrozenStatisticsBatchNorm2d", "FrozenStatisticsBN"]


class FrozenStatisticsBatchNorm2d(FrozenBatchNorm2d):
    """Detectron2's ``FrozenBatchNorm2d`` (same keys, eps, function and checkpoints) whose
    ``weight`` and ``bias`` are parameters instead of buffers. ``ResNet.freeze`` still freezes
    them in the frozen stages (it turns off ``requires_grad`` of every parameter there)."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps)
        weight, bias = self._buffers.pop("weight"), self._buffers.pop("bias")
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    def __repr__(self):
        return f"FrozenStatisticsBatchNorm2d(num_features={self.num_features}, eps={self.eps})"


class FrozenStatisticsBN:
    """``norm=`` factory for Detectron2's ResNet (``get_norm`` calls it with the channels); a
    LazyConfig value, unlike a class."""

    def __call__(self, num_channels: int) -> FrozenStatisticsBatchNorm2d:
        return FrozenStatisticsBatchNorm2d(num_channels)

    def __repr__(self):
        return "FrozenStatisticsBN()"

