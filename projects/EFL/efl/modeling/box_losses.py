"""Box-regression loss terms of a dense detector. Each term takes the batch's
:class:`PositiveSamples` and the :class:`LossNormalizers` and returns ``{loss name: value}``; a
detector sums a list of them, so a family adds a term (YOLOX-IP's L1) without a new branch."""
from typing import Dict

import torch
import torch.nn.functional as F
from fvcore.nn import giou_loss

from detectron2.structures import Boxes

from ..compat.modeling import dense_box_regression_loss
from .normalizers import LossNormalizers
from .positive_samples import PositiveSamples

__all__ = [
    "AnchorDeltaL1Loss",
    "Detectron2BoxLoss",
    "IoUWeightedGIoULoss",
    "WeightedLossTerm",
    "iou_weighted_giou_loss",
]


class WeightedLossTerm:
    """A loss term with a weight and a name (its key in the detector's loss dict); subclasses set
    ``default_name`` and compute ``__call__(positives, normalizers) -> {name: loss}``."""

    default_name = None

    def __init__(self, *, loss_weight: float = 1.0, name: str = None):
        """
        Args:
            loss_weight: multiplies the loss.
            name: key of the loss in the detector's loss dict; None uses ``default_name``.
        """
        self.loss_weight = loss_weight
        self.name = name or self.default_name


def iou_weighted_giou_loss(pred_boxes, gt_boxes, iou_targets, normalizer):
    """
    sum_i t_i * (1 - GIoU(pred_i, gt_i)) / normalizer.

    Args:
        pred_boxes: (P, 4) decoded predictions of the positive anchors (with gradient).
        gt_boxes: (P, 4) their matched ground truths.
        iou_targets: (P,) weights t_i (IoU of the prediction with its ground truth), detached here.
        normalizer: positive float or 0-dim tensor.
    """
    # An empty sum keeps the graph, so every parameter still gets a (zero) gradient.
    losses = giou_loss(pred_boxes, gt_boxes, reduction="none")  # (P,)
    return (losses * iou_targets.detach()).sum() / normalizer


class IoUWeightedGIoULoss(WeightedLossTerm):
    """The reference's box loss (docs/improved_baseline.md): GIoU of each positive weighted by its
    IoU target, divided by the mean over processes of the sum of IoU targets."""

    default_name = "loss_box_reg"

    def __call__(self, positives: PositiveSamples, normalizers: LossNormalizers) -> Dict:
        loss = iou_weighted_giou_loss(
            positives.pred_boxes, positives.gt_boxes, positives.iou_targets, normalizers.iou_target_sum
        )
        return {self.name: self.loss_weight * loss}


class AnchorDeltaL1Loss(WeightedLossTerm):
    """YOLOX-IP's extra term: L1 between the predicted and the target encoded deltas, the mean
    over this process's positives x 4 (no other normaliser, as the reference; 0 without
    positives)."""

    default_name = "loss_l1"

    def __call__(self, positives: PositiveSamples, normalizers: LossNormalizers) -> Dict:
        target_deltas = positives.box2box_transform.get_deltas(positives.anchors, positives.gt_boxes)
        losses = F.l1_loss(positives.pred_deltas, target_deltas, reduction="none")  # (P, 4)
        # sum / max(numel, 1): the mean, and a graph-keeping 0 without positives
        return {self.name: self.loss_weight * losses.sum() / max(losses.numel(), 1)}


class Detectron2BoxLoss:
    """Detectron2's RetinaNet box loss (smooth L1 on deltas, or GIoU / DIoU / CIoU on boxes),
    summed over positives and divided by the positive normaliser."""

    def __init__(self, *, box_reg_loss_type: str = "smooth_l1", smooth_l1_beta: float = 0.0,
                 name: str = "loss_box_reg"):
        """
        Args:
            box_reg_loss_type: "smooth_l1", "giou", "diou" or "ciou".
            smooth_l1_beta: beta of the smooth L1 (0 is L1).
            name: key of the loss in the detector's loss dict.
        """
        self.box_reg_loss_type = box_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta
        self.name = name

    def __call__(self, positives: PositiveSamples, normalizers: LossNormalizers) -> Dict:
        # Detectron2's own function, on the positives laid out as one image of P anchors.
        num_positives = len(positives)
        loss = dense_box_regression_loss(
            [Boxes(positives.anchors)],
            positives.box2box_transform,
            [positives.pred_deltas[None]],
            [positives.gt_boxes],
            torch.ones(1, num_positives, dtype=torch.bool, device=positives.anchors.device),
            box_reg_loss_type=self.box_reg_loss_type,
            smooth_l1_beta=self.smooth_l1_beta,
        )
        return {self.name: loss / normalizers.positives}
