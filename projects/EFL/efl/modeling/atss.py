"""Adaptive Training Sample Selection (Zhang et al., https://arxiv.org/abs/1912.02424) as used
by the EFL improved baseline (docs/improved_baseline.md §2)."""
from typing import List, Tuple

import torch

from detectron2.structures import Boxes, Instances, pairwise_iou

__all__ = ["ATSSAssigner"]


class ATSSAssigner:
    """
    Per image: keep ground truths wider and taller than ``min_box_size``; per level and per ground
    truth take the ``topk`` anchors whose centres are nearest to the (image-clamped) ground-truth
    centre; a candidate is positive when its IoU is at least mean + std (unbiased) of that ground
    truth's candidate IoUs and its centre lies strictly inside the box (by ``center_margin``). An
    anchor positive for several ground truths takes the one with the highest IoU.
    """

    def __init__(self, *, topk: int = 18, min_box_size: float = 1.0, center_margin: float = 0.01):
        """
        Args:
            topk: candidates per level per ground truth, counted in anchors (18 = 9 locations x 2
                anchors in the improved baseline).
            min_box_size: ground truths with width or height <= this are dropped.
            center_margin: how far inside the box (in pixels) an anchor centre must be.
        """
        self.topk = topk
        self.min_box_size = min_box_size
        self.center_margin = center_margin

    @torch.no_grad()
    def __call__(
        self, anchors: List[Boxes], gt_instances: Instances, num_classes: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            anchors: one Boxes per level, (Hi*Wi*A, 4) each, in Detectron2's anchor-major order.
            gt_instances: ``gt_boxes`` and ``gt_classes`` of one image; its ``image_size`` clamps
                the ground-truth centres.
            num_classes: K; background anchors get label K.

        Returns:
            labels (R,) int64 in [0, K], matched ground-truth boxes (R, 4) (zeros for background),
            with R = sum over levels of Hi*Wi*A.
        """
        num_anchors_per_level = [len(a) for a in anchors]
        anchor_boxes = Boxes.cat(anchors)
        device = anchor_boxes.tensor.device
        num_anchors = len(anchor_boxes)

        gt_boxes = gt_instances.gt_boxes.tensor
        gt_classes = gt_instances.gt_classes
        if not torch.isfinite(gt_boxes).all():
            raise ValueError(f"ground-truth boxes must be finite, got {gt_boxes.tolist()}")
        widths = gt_boxes[:, 2] - gt_boxes[:, 0]
        heights = gt_boxes[:, 3] - gt_boxes[:, 1]
        # The ground truths large enough to match, selected through one index list (one host read).
        # Masking the others instead would read nothing, but torch.cdist's distances, and so the
        # ties among equidistant candidates, depend on the number of rows.
        keep = ((widths > self.min_box_size) & (heights > self.min_box_size)).nonzero().squeeze(1)
        gt_boxes, gt_classes = gt_boxes.index_select(0, keep), gt_classes.index_select(0, keep)

        labels = torch.full((num_anchors,), num_classes, dtype=torch.int64, device=device)
        matched_boxes = torch.zeros((num_anchors, 4), dtype=anchor_boxes.tensor.dtype, device=device)
        if len(gt_boxes) == 0:
            return labels, matched_boxes

        ious = pairwise_iou(Boxes(gt_boxes), anchor_boxes)  # (G, R)
        gt_centers = Boxes(gt_boxes).get_centers()  # (G, 2)
        height, width = gt_instances.image_size
        gt_centers[:, 0] = gt_centers[:, 0].clamp(0, width)
        gt_centers[:, 1] = gt_centers[:, 1].clamp(0, height)
        anchor_centers = anchor_boxes.get_centers()  # (R, 2)
        distances = torch.cdist(gt_centers, anchor_centers)  # (G, R)

        candidates = []
        start = 0
        for n in num_anchors_per_level:
            k = min(self.topk, n)
            _, idx = distances[:, start : start + n].topk(k, dim=1, largest=False)
            candidates.append(idx + start)
            start += n
        candidates = torch.cat(candidates, dim=1)  # (G, sum_levels k)

        candidate_ious = ious.gather(1, candidates)  # (G, K_c)
        # Unbiased std as the reference; a single candidate has no spread, treat it as 0.
        std = candidate_ious.std(dim=1) if candidates.shape[1] > 1 else 0.0
        threshold = candidate_ious.mean(dim=1) + std  # (G,)
        is_pos = candidate_ious >= threshold[:, None]

        cx = anchor_centers[candidates, 0]  # (G, K_c)
        cy = anchor_centers[candidates, 1]
        margin = self.center_margin
        inside = (
            (cx - gt_boxes[:, None, 0] > margin)
            & (cy - gt_boxes[:, None, 1] > margin)
            & (gt_boxes[:, None, 2] - cx > margin)
            & (gt_boxes[:, None, 3] - cy > margin)
        )
        is_pos &= inside

        # (G, R): IoU where the anchor is a positive candidate of that ground truth, else -1. A
        # ground truth's candidates are distinct anchors (disjoint level ranges), so the scatter
        # writes each entry once.
        positive_ious = torch.full_like(ious, -1.0)
        positive_ious.scatter_(1, candidates, torch.where(is_pos, candidate_ious, positive_ious.new_tensor(-1.0)))
        best_iou, best_gt = positive_ious.max(dim=0)  # (R,)
        foreground = best_iou >= 0
        labels = torch.where(foreground, gt_classes[best_gt], labels)
        matched_boxes = torch.where(foreground[:, None], gt_boxes[best_gt], matched_boxes)
        return labels, matched_boxes
