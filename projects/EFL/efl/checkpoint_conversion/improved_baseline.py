"""The reference's improved baseline (ResNet, FPN, RetinaHeadWithIOU) -> this project's
``ImprovedRetinaNet`` with ``FPNWithLateralTop`` and ``RetinaNetHeadWithIoU``.

Key layout: docs/eod_checkpoints.md.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

from .eod_layouts import EODCheckpointError
from .key_rules import RuleSet
from .model_info import EODModelInfo

__all__ = ["IMPROVED_BASELINE_RULES", "detect_improved_baseline", "check_no_tower_conv_biases"]

# Blocks per ResNet stage (the reference's layer1..layer4) -> depth.
RESNET_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101}
CONFIGS = {
    50: "configs/efl_improved_baseline_r50_2x_rfs.py",
    101: "configs/efl_improved_baseline_r101_2x_rfs.py",
}
# What the configs build; any other number is an override printed with the config.
CONFIG_NUM_CLASSES, CONFIG_NUM_ANCHORS = 1203, 2
TOWER_CONV_INDICES = (0, 3, 6, 9)  # [conv, GroupNorm, ReLU] x 4 in both towers


def _rules():
    rules = [
        # The stem, nn.Sequential(conv1, bn1, relu, maxpool) in the reference.
        ("backbone.layer0.0.weight", "backbone.bottom_up.stem.conv1.weight"),
        ("backbone.layer0.1.{bn}", "backbone.bottom_up.stem.conv1.norm.{bn}"),
    ]
    for stage in (1, 2, 3, 4):  # torchvision's layer1..4 = Detectron2's res2..5
        ours = f"backbone.bottom_up.res{stage + 1}.{{n}}"
        ref = f"backbone.layer{stage}.{{n}}"
        rules += [
            (f"{ref}.conv{{k}}.weight", f"{ours}.conv{{k}}.weight"),
            # Detectron2 keeps each conv's norm inside the conv (Conv2d(norm=...)).
            (f"{ref}.bn{{k}}.{{bn}}", f"{ours}.conv{{k}}.norm.{{bn}}"),
            (f"{ref}.downsample.0.weight", f"{ours}.shortcut.weight"),
            (f"{ref}.downsample.1.{{bn}}", f"{ours}.shortcut.norm.{{bn}}"),
        ]
    for level in (3, 4, 5):  # FPN on C3-C5: lateral 1x1 and output 3x3 convs
        rules += [
            (f"neck.c{level}_lateral.{{param}}", f"backbone.fpn_lateral{level}.{{param}}"),
            (f"neck.p{level}_conv.{{param}}", f"backbone.fpn_output{level}.{{param}}"),
        ]
    rules += [
        # P6 = conv(C5 lateral), P7 = conv(P6): FPNWithLateralTop's top block
        ("neck.p6_conv.{param}", "backbone.top_block.p6.{param}"),
        ("neck.p7_conv.{param}", "backbone.top_block.p7.{param}"),
        ("roi_head.cls_subnet.{n}.{param}", "head.cls_subnet.{n}.{param}"),
        ("roi_head.box_subnet.{n}.{param}", "head.bbox_subnet.{n}.{param}"),
        ("roi_head.cls_subnet_pred.{param}", "head.cls_score.{param}"),
        ("roi_head.box_subnet_pred.{param}", "head.bbox_pred.{param}"),
        ("roi_head.iou_pred.{param}", "head.iou_pred.{param}"),
        ("post_process.cls_loss.{stat}", "cls_loss.{stat}"),
    ]
    return rules


IMPROVED_BASELINE_RULES = RuleSet(_rules())


def _shape(state_dict, key):
    if key not in state_dict:
        raise EODCheckpointError(f"ResNet-FPN checkpoint without the key {key!r}")
    return tuple(state_dict[key].shape)


def detect_improved_baseline(state_dict: Dict[str, torch.Tensor]) -> Optional[EODModelInfo]:
    """The model a reference state dict holds, if it is a ResNet-FPN-RetinaHeadWithIOU; None when
    the keys are not of that family; an error when they are but the size is not one we build."""
    if "backbone.layer0.0.weight" not in state_dict:
        return None
    blocks = []
    for stage in (1, 2, 3, 4):
        pattern = re.compile(rf"backbone\.layer{stage}\.(\d+)\.")
        indices = {int(m.group(1)) for k in state_dict for m in [pattern.match(k)] if m}
        if indices and indices != set(range(len(indices))):
            raise EODCheckpointError(f"backbone.layer{stage} has blocks {sorted(indices)}, not 0..n-1")
        blocks.append(len(indices))
    depth = RESNET_DEPTHS.get(tuple(blocks))
    if depth is None:
        raise EODCheckpointError(
            f"ResNet with {blocks} blocks per stage: this project has configs for ResNet-50 "
            f"{list(min(RESNET_DEPTHS))} and ResNet-101 {list(max(RESNET_DEPTHS))} only"
        )
    num_anchors = _shape(state_dict, "roi_head.iou_pred.weight")[0]
    cls_channels = _shape(state_dict, "roi_head.cls_subnet_pred.weight")[0]
    if cls_channels % num_anchors:
        raise EODCheckpointError(
            f"roi_head.cls_subnet_pred has {cls_channels} output channels, not a multiple of the "
            f"{num_anchors} anchors per location that roi_head.iou_pred has"
        )
    num_classes = cls_channels // num_anchors
    overrides = []
    if num_classes != CONFIG_NUM_CLASSES:
        overrides.append(f"model.num_classes={num_classes}")
    if num_anchors != CONFIG_NUM_ANCHORS:
        raise EODCheckpointError(
            f"{num_anchors} anchors per location (roi_head.iou_pred): the improved-baseline "
            f"configs build {CONFIG_NUM_ANCHORS} (scales 6 and 8 x stride)"
        )
    return EODModelInfo(
        family="improved_baseline",
        size=f"R{depth}",
        num_classes=num_classes,
        num_anchors=num_anchors,
        config=CONFIGS[depth],
        overrides=overrides,
        rules=IMPROVED_BASELINE_RULES,
    )


def check_no_tower_conv_biases(state_dict: "OrderedDict[str, torch.Tensor]") -> None:
    """The reference's towers are [conv without bias, GroupNorm, ReLU], and so are ours in the
    improved-baseline configs (``tower_conv_bias=False``): a converted file with a tower conv bias
    is not one of its RetinaHeadWithIOU checkpoints."""
    for tower in ("cls_subnet", "bbox_subnet"):
        for index in TOWER_CONV_INDICES:
            bias_key = f"head.{tower}.{index}.bias"
            if bias_key in state_dict:
                raise EODCheckpointError(
                    f"{IMPROVED_BASELINE_RULES.to_reference(bias_key)!r}: the reference's tower "
                    "convs have no bias; this file is not one of its RetinaHeadWithIOU checkpoints"
                )
