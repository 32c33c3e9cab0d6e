"""The IoU branch's loss, shared by both detector families (docs/improved_baseline.md)."""
from typing import Dict

import torch.nn.functional as F

from .box_losses import WeightedLossTerm
from .normalizers import LossNormalizers
from .positive_samples import PositiveSamples

__all__ = ["IoUBranchLoss"]


class IoUBranchLoss(WeightedLossTerm):
    """Binary cross-entropy of each positive's IoU logit against its IoU target (a soft label),
    summed over positives and divided by the positive normaliser. Negatives get no IoU loss."""

    default_name = "loss_iou"

    def __call__(self, positives: PositiveSamples, normalizers: LossNormalizers) -> Dict:
        loss = F.binary_cross_entropy_with_logits(
            positives.pred_iou_logits, positives.iou_targets, reduction="sum"
        )
        return {self.name: self.loss_weight * loss / normalizers.positives}
