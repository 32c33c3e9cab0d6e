"""The IoU branch's loss, shared by both detector families (docs/improved_baseline.md)."""
from typing import Dict

import torch.nn.functional as F

from .normalizers import LossNormalizers
from .positive_samples import PositiveSamples

__all__ = ["IoUBranchLoss"]


class IoUBranchLoss:
    """Binary cross-entropy of each positive's IoU logit against its IoU target (a soft label),
    summed over positives and divided by the positive normaliser. Negatives get no IoU loss."""

    def __init__(self, *, loss_weight: float = 1.0, name: str = "loss_iou"):
        """
        Args:
            loss_weight: multiplies the loss.
            name: key of the loss in the detector's loss dict.
        """
        self.loss_weight = loss_weight
        self.name = name

    def __call__(self, positives: PositiveSamples, normalizers: LossNormalizers) -> Dict:
        loss = F.binary_cross_entropy_with_logits(
            positives.pred_iou_logits, positives.iou_targets, reduction="sum"
        )
        return {self.name: self.loss_weight * loss / normalizers.positives}
