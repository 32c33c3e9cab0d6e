"""Detectron2's IoU ``Matcher`` behind the anchor-labeller interface of :class:`ATSSAssigner`, so
that a detector can take either one."""
from typing import List, Tuple

import torch

from detectron2.modeling.matcher import Matcher
from detectron2.structures import Boxes, Instances, pairwise_iou

__all__ = ["MatcherLabeler"]


class MatcherLabeler:
    """
    Labels anchors as Detectron2's ``RetinaNet.label_anchors`` does: each anchor takes the ground
    truth of highest IoU; the matcher's labels 0 / -1 make it background / ignored.
    """

    def __init__(self, *, matcher: Matcher):
        """
        Args:
            matcher: e.g. ``Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True)``
                (RetinaNet's).
        """
        self.matcher = matcher

    @torch.no_grad()
    def __call__(
        self, anchors: List[Boxes], gt_instances: Instances, num_classes: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            anchors: one Boxes per level, (Hi*Wi*A, 4) each.
            gt_instances: ``gt_boxes`` and ``gt_classes`` of one image.
            num_classes: K; background anchors get label K, ignored ones -1.

        Returns:
            labels (R,) int64 in [-1, K] and matched ground-truth boxes (R, 4) (undefined for
            anchors that are not foreground), R = sum over levels of Hi*Wi*A.
        """
        anchors = Boxes.cat(anchors)
        matched_idxs, anchor_labels = self.matcher(pairwise_iou(gt_instances.gt_boxes, anchors))
        if len(gt_instances) == 0:
            return torch.full_like(matched_idxs, num_classes), torch.zeros_like(anchors.tensor)
        labels = gt_instances.gt_classes[matched_idxs]
        labels[anchor_labels == 0] = num_classes
        labels[anchor_labels == -1] = -1
        return labels, gt_instances.gt_boxes.tensor[matched_idxs]
