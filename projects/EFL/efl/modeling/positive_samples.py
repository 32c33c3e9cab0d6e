"""What the box and IoU-branch losses of a dense detector need about its positive anchors."""
from dataclasses import dataclass

import torch
from torch import Tensor

from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes
from detectron2.structures.boxes import matched_pairwise_iou

__all__ = ["PositiveSamples"]


@dataclass
class PositiveSamples:
    """
    The P positive anchors of a batch, in (image, anchor) order. ``iou_targets`` is the quality
    target shared by both detector families: the IoU of each positive's *detached* predicted box
    with its ground truth. It is the IoU branch's target, the GIoU weight and EQFL's score.
    """

    anchors: Tensor  # (P, 4)
    pred_deltas: Tensor  # (P, 4), with gradient
    pred_boxes: Tensor  # (P, 4) decoded from pred_deltas, with gradient
    gt_boxes: Tensor  # (P, 4)
    iou_targets: Tensor  # (P,), detached
    pred_iou_logits: Tensor = None  # (P,) with gradient, or None without an IoU branch
    box2box_transform: Box2BoxTransform = None

    @classmethod
    def gather(cls, anchors, pred_deltas, gt_boxes, pos_mask, box2box_transform, pred_iou_logits=None):
        """
        Args:
            anchors: (R, 4) anchors of one image, all levels.
            pred_deltas: (N, R, 4) predicted deltas.
            gt_boxes: (N, R, 4) matched ground-truth boxes.
            pos_mask: (N, R) bool, the positive anchors.
            box2box_transform: the detector's box coder.
            pred_iou_logits: (N, R) IoU-branch logits, or None.
        """
        num_anchors = pos_mask.shape[1]
        # (P,) flat (image, anchor) indices of the positives: the one host read of the mask, for
        # every selection below
        index = pos_mask.flatten().nonzero().squeeze(1)
        pos_anchors = anchors.index_select(0, index % num_anchors)
        pos_deltas = pred_deltas.flatten(0, 1).index_select(0, index)
        pos_boxes = box2box_transform.apply_deltas(pos_deltas, pos_anchors)
        pos_gt_boxes = gt_boxes.flatten(0, 1).index_select(0, index)
        with torch.no_grad():
            iou_targets = matched_pairwise_iou(Boxes(pos_boxes.detach()), Boxes(pos_gt_boxes))
            # a degenerate pair (empty union) has IoU 0, not NaN
            iou_targets = torch.nan_to_num(iou_targets, nan=0.0)
        return cls(
            anchors=pos_anchors,
            pred_deltas=pos_deltas,
            pred_boxes=pos_boxes,
            gt_boxes=pos_gt_boxes,
            iou_targets=iou_targets,
            pred_iou_logits=None if pred_iou_logits is None else pred_iou_logits.flatten().index_select(0, index),
            box2box_transform=box2box_transform,
        )

    def __len__(self):
        return self.anchors.shape[0]
