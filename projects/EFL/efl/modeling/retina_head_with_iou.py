"""RetinaNet head with GroupNorm towers and an IoU branch (docs/improved_baseline.md §1)."""
from typing import List

import torch
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead

from ..compat import GroupNormFactory

__all__ = ["RetinaNetHeadWithIoU"]


class RetinaNetHeadWithIoU(RetinaNetHead):
    """
    Detectron2's RetinaNetHead with GroupNorm in both towers plus a 3x3 ``iou_pred`` conv (A
    channels) on the *box* tower. Returns three per-level lists: class logits (N, A*K, H, W), box
    deltas (N, A*4, H, W) and IoU logits (N, A, H, W), all anchor-major in the channel axis.
    """

    def __init__(
        self,
        *,
        input_shape: List[ShapeSpec],
        num_classes: int,
        num_anchors: int,
        conv_dims: List[int],
        num_groups: int = 32,
        prior_prob: float = 0.001,
        tower_conv_bias: bool = True,
    ):
        """
        Args:
            input_shape: one ShapeSpec per FPN level (only the channels are read).
            num_classes: number of foreground classes K.
            num_anchors: anchors per location A.
            conv_dims: output channels of each tower conv; its length is the tower depth.
            num_groups: GroupNorm groups in the towers (0 disables the norm).
            prior_prob: initial foreground probability of the classification output.
            tower_conv_bias: False removes the bias of the tower convs, as the reference's
                towers (conv without bias, GroupNorm, ReLU); Detectron2's head has one.
        """
        if len(conv_dims) == 0:
            raise ValueError("conv_dims must list at least one tower conv")
        if num_groups and any(c % min(num_groups, c) for c in conv_dims):
            raise ValueError(f"conv_dims {conv_dims} are not divisible by num_groups={num_groups}")
        super().__init__(
            input_shape=input_shape,
            num_classes=num_classes,
            num_anchors=num_anchors,
            conv_dims=conv_dims,
            norm=GroupNormFactory(num_groups) if num_groups else "",
            prior_prob=prior_prob,
        )
        if not tower_conv_bias:
            for tower in (self.cls_subnet, self.bbox_subnet):
                for layer in tower:
                    if isinstance(layer, nn.Conv2d):
                        layer.bias = None  # unregisters the (zero-initialised) parameter
        self.iou_pred = nn.Conv2d(conv_dims[-1], num_anchors, kernel_size=3, stride=1, padding=1)
        torch.nn.init.normal_(self.iou_pred.weight, mean=0, std=0.01)
        torch.nn.init.constant_(self.iou_pred.bias, 0)

    def forward(self, features):
        logits, bbox_reg, iou_logits = [], [], []
        for feature in features:
            logits.append(self.cls_score(self.cls_subnet(feature)))
            box_feature = self.bbox_subnet(feature)
            bbox_reg.append(self.bbox_pred(box_feature))
            iou_logits.append(self.iou_pred(box_feature))
        return logits, bbox_reg, iou_logits
