"""YOLOX-IP's decoupled head: per level a 1x1 stem, a class branch and a box branch with an IoU
output (docs/yolox_ip.md)."""
import math
from typing import List, Sequence, Tuple

import torch
from torch import nn

from .blocks import ConvBNAct

__all__ = ["YOLOXDecoupledHead"]


class YOLOXDecoupledHead(nn.Module):
    """
    One head per pyramid level (weights not shared across levels). Level l:

        stem:      1x1 ConvBNAct, in_l -> F
        cls_convs: 2 x 3x3 ConvBNAct -> cls_preds: 1x1 conv, F -> A*C   (class logits)
        reg_convs: 2 x 3x3 ConvBNAct -> reg_preds: 1x1 conv, F -> A*4   (anchor deltas)
                                     -> obj_preds: 1x1 conv, F -> A     (IoU logits)

    with in_l = int(in_channels[l] * width) and F = int(feat_channels * width), as YOLOX sizes its
    head. ``obj_preds`` is YOLOX's objectness output, trained here as the IoU branch of the
    improved baseline. The outputs are anchor-major in the channel axis (class logit channel
    a * C + c, delta channel a * 4 + k, IoU channel a), the layout Detectron2's
    ``permute_to_N_HWA_K`` reads. Submodule names are the reference's (its ``roi_head.*`` keys are
    our ``head.*``).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        num_anchors: int,
        width: float,
        in_channels: Sequence[int] = (256, 512, 1024),
        feat_channels: int = 256,
        prior_prob: float = 0.001,
    ):
        """
        Args:
            num_classes: foreground classes C.
            num_anchors: anchors per location A (the anchor generator's count).
            width: width multiplier of the model (the backbone's).
            in_channels: input channels of each level at width 1.0, finest first.
            feat_channels: channels of the stem and branches at width 1.0.
            prior_prob: initial foreground probability of the class and IoU outputs.
        """
        super().__init__()
        if num_classes < 1 or num_anchors < 1:
            raise ValueError(
                f"num_classes and num_anchors must be >= 1, got {num_classes}, {num_anchors}"
            )
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
        self.num_classes = num_classes
        self.num_anchors = num_anchors
        feat = int(feat_channels * width)

        # registered in the reference's order, so the state_dicts list their keys in the same order
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        self.stems = nn.ModuleList()
        for channels in in_channels:
            self.stems.append(
                ConvBNAct(in_channels=int(channels * width), out_channels=feat, kernel_size=1)
            )
            self.cls_convs.append(self._branch(feat))
            self.reg_convs.append(self._branch(feat))
            self.cls_preds.append(nn.Conv2d(feat, num_anchors * num_classes, kernel_size=1))
            self.reg_preds.append(nn.Conv2d(feat, num_anchors * 4, kernel_size=1))
            self.obj_preds.append(nn.Conv2d(feat, num_anchors, kernel_size=1))

        # Weights keep PyTorch's default init (as the reference); only the two sigmoid outputs start
        # at the prior, so the first focal-type losses are not swamped by the negatives.
        bias = -math.log((1 - prior_prob) / prior_prob)
        for conv in [*self.cls_preds, *self.obj_preds]:
            nn.init.constant_(conv.bias, bias)

    @staticmethod
    def _branch(channels: int) -> nn.Sequential:
        return nn.Sequential(
            ConvBNAct(in_channels=channels, out_channels=channels, kernel_size=3),
            ConvBNAct(in_channels=channels, out_channels=channels, kernel_size=3),
        )

    def forward(
        self, features: List[torch.Tensor]
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor], List[torch.Tensor]]:
        """
        Args:
            features: one (N, in_l, H_l, W_l) map per level, finest first.

        Returns:
            logits: per level (N, A*C, H_l, W_l).
            deltas: per level (N, A*4, H_l, W_l).
            iou_logits: per level (N, A, H_l, W_l).
        """
        if len(features) != len(self.stems):
            raise ValueError(
                f"the head has {len(self.stems)} levels, got {len(features)} feature maps"
            )
        logits, deltas, iou_logits = [], [], []
        for level, x in enumerate(features):
            x = self.stems[level](x)
            cls_feat = self.cls_convs[level](x)
            reg_feat = self.reg_convs[level](x)
            logits.append(self.cls_preds[level](cls_feat))
            deltas.append(self.reg_preds[level](reg_feat))
            iou_logits.append(self.obj_preds[level](reg_feat))
        return logits, deltas, iou_logits
