"""Detectors of the project: the improved-baseline RetinaNet, its FPN, head and ATSS assigner."""
from .atss import ATSSAssigner
from .box_losses import aligned_iou, iou_weighted_giou_loss
from .fpn import FPNWithLateralTop, LastLevelP6P7FromLateral
from .improved_retinanet import ImprovedRetinaNet
from .retina_head_with_iou import RetinaNetHeadWithIoU
from .small_stem import SmallStem

__all__ = [
    "ATSSAssigner",
    "FPNWithLateralTop",
    "ImprovedRetinaNet",
    "LastLevelP6P7FromLateral",
    "RetinaNetHeadWithIoU",
    "SmallStem",
    "aligned_iou",
    "iou_weighted_giou_loss",
]
