"""Box quality targets and the IoU-weighted GIoU loss of the improved baseline (EFL_SPEC.md §5.3)."""
import torch
from fvcore.nn import giou_loss

__all__ = ["aligned_iou", "iou_weighted_giou_loss"]


def aligned_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """
    IoU of row i of ``boxes1`` with row i of ``boxes2``, both (N, 4) XYXY; returns (N,).
    Degenerate pairs (zero union) get IoU 0 instead of NaN.
    """
    lt = torch.max(boxes1[:, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, 2:], boxes2[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    area1 = (boxes1[:, 2:] - boxes1[:, :2]).clamp(min=0).prod(dim=1)
    area2 = (boxes2[:, 2:] - boxes2[:, :2]).clamp(min=0).prod(dim=1)
    return inter / (area1 + area2 - inter).clamp(min=eps)


def iou_weighted_giou_loss(
    pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, iou_targets: torch.Tensor, normalizer
) -> torch.Tensor:
    """
    sum_i t_i * (1 - GIoU(pred_i, gt_i)) / normalizer.

    Args:
        pred_boxes: (P, 4) decoded predictions of the positive anchors (with gradient).
        gt_boxes: (P, 4) their matched ground truths.
        iou_targets: (P,) detached weights t_i (IoU of the prediction with its ground truth).
        normalizer: positive float or 0-dim tensor.
    """
    # An empty sum keeps the graph, so every parameter still gets a (zero) gradient.
    losses = giou_loss(pred_boxes, gt_boxes, reduction="none")  # (P,)
    return (losses * iou_targets.detach()).sum() / normalizer
