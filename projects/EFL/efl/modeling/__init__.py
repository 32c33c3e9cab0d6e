"""The detectors of the project: one RetinaNet subclass for both families and its parts (anchor
labellers, normalisers, loss terms), the improved baseline's FPN and head, and YOLOX-IP's
CSPDarknet, PAFPN and decoupled head (``efl.modeling.yolox``)."""
from .anchor_labeling import MatcherLabeler
from .atss import ATSSAssigner
from .box_losses import AnchorDeltaL1Loss, Detectron2BoxLoss, IoUWeightedGIoULoss, iou_weighted_giou_loss
from .fpn import FPNWithLateralTop, LastLevelP6P7FromLateral
from .frozen_statistics_bn import FrozenStatisticsBatchNorm2d, FrozenStatisticsBN
from .improved_retinanet import ImprovedRetinaNet
from .iou_branch_loss import IoUBranchLoss
from .normalizers import EMAPositivesNormalizer, LossNormalizers, MeanPositivesNormalizer
from .positive_samples import PositiveSamples
from .retina_head_with_iou import RetinaNetHeadWithIoU
from .small_stem import SmallStem
from .yolox import CSPDarknet, YOLOXDecoupledHead, YOLOXPAFPN

__all__ = [
    "ATSSAssigner",
    "CSPDarknet",
    "AnchorDeltaL1Loss",
    "Detectron2BoxLoss",
    "EMAPositivesNormalizer",
    "FPNWithLateralTop",
    "FrozenStatisticsBN",
    "FrozenStatisticsBatchNorm2d",
    "ImprovedRetinaNet",
    "IoUBranchLoss",
    "IoUWeightedGIoULoss",
    "LastLevelP6P7FromLateral",
    "LossNormalizers",
    "MatcherLabeler",
    "MeanPositivesNormalizer",
    "PositiveSamples",
    "RetinaNetHeadWithIoU",
    "SmallStem",
    "YOLOXDecoupledHead",
    "YOLOXPAFPN",
    "iou_weighted_giou_loss",
]
