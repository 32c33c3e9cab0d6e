"""Loss normalisers of a dense detector: how many positives (and how much IoU target) a loss sum
is divided by."""
from typing import NamedTuple

import torch
from torch import Tensor

from detectron2.utils import comm

from ..utils.distributed import all_reduce_sum_

__all__ = ["EMAPositivesNormalizer", "LossNormalizers", "MeanPositivesNormalizer"]


class LossNormalizers(NamedTuple):
    positives: Tensor  # 0-dim, divides the classification, IoU-branch and Detectron2 box losses
    iou_target_sum: Tensor  # 0-dim, divides the IoU-weighted GIoU


class MeanPositivesNormalizer:
    """
    The reference's normalisers, recomputed every iteration (no moving average):
    max(sum over processes of the positives, 1) / world size, i.e. the mean number of positives
    per process, and likewise for the sum of the IoU targets. One all-reduce for both.
    """

    def __call__(self, num_positives: Tensor, iou_target_sum: Tensor) -> LossNormalizers:
        """
        Args:
            num_positives: 0-dim, positive anchors of this process's batch.
            iou_target_sum: 0-dim, the sum of their IoU targets.
        """
        stats = torch.stack([num_positives.float(), iou_target_sum.float()])
        all_reduce_sum_(stats)
        stats = stats.clamp(min=1.0) / comm.get_world_size()
        return LossNormalizers(stats[0], stats[1])


class EMAPositivesNormalizer:
    """
    Detectron2's RetinaNet normaliser: a moving average of this process's positive count,
    ``n <- momentum * n + (1 - momentum) * max(P, 1)`` starting at ``initial``, for every loss.
    """

    def __init__(self, *, momentum: float = 0.9, initial: float = 100.0):
        """
        Args:
            momentum: weight of the previous value.
            initial: value before the first iteration.
        """
        self.momentum = momentum
        self.value = initial

    def __call__(self, num_positives: Tensor, iou_target_sum: Tensor) -> LossNormalizers:
        # As Detectron2: a host float, updated in training only (the detector calls this there).
        self.value = self.momentum * self.value + (1 - self.momentum) * max(num_positives.item(), 1)
        value = torch.tensor(self.value, device=num_positives.device)
        return LossNormalizers(value, value)
