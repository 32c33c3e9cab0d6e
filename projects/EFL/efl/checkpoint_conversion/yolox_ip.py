"""The reference's YOLOX-IP (CSPDarknet, YoloxPAFPN, YoloXHead with num_point anchors) -> this
project's ``ImprovedRetinaNet`` with ``efl.modeling.yolox`` parts.

Our YOLOX-IP modules carry the reference's submodule names, so only the top-level prefixes change
(docs/eod_checkpoints.md). The Focus stem gathers its four pixel phases in the reference's order,
so the stem weights load unpermuted.
"""
import re
from typing import Dict, Optional

import torch

from .eod_layouts import EODCheckpointError
from .key_rules import RuleSet
from .model_info import EODModelInfo

__all__ = ["YOLOX_IP_RULES", "YOLOX_SIZES", "detect_yolox_ip"]

YOLOX_IP_RULES = RuleSet([
    ("backbone.{rest}", "backbone.bottom_up.{rest}"),  # CSPDarknet
    ("neck.{rest}", "backbone.{rest}"),  # YOLOXPAFPN holds the darknet as bottom_up
    ("roi_head.{rest}", "head.{rest}"),
    ("post_process.cls_loss.{stat}", "cls_loss.{stat}"),
])

# (stem channels int(64 * width), bottlenecks in dark2 max(round(3 * depth), 1)) -> size
YOLOX_SIZES = {(32, 1): "S", (48, 2): "M", (64, 3): "L", (80, 4): "X"}
CONFIG_NUM_CLASSES, CONFIG_NUM_ANCHORS = 1203, 2
STEM_KEY = "backbone.stem.conv_block.conv.weight"


def _config(size: str, loss: str) -> str:
    return f"configs/{loss}_yolox_ip_{size.lower()}_300e_rfs.py"


def detect_yolox_ip(state_dict: Dict[str, torch.Tensor], loss: Optional[str] = None
                    ) -> Optional[EODModelInfo]:
    """The model a reference state dict holds, if it is a YOLOX-IP; None when the keys are not of
    that family; an error when they are but the size is not one of S/M/L/X.

    ``loss`` ("efl" or "eqfl") picks between the two configs of a size, which build the same
    network: nothing in the weights tells the two losses apart. None means "efl".
    """
    if STEM_KEY not in state_dict:
        return None
    width = tuple(state_dict[STEM_KEY].shape)[0]
    pattern = re.compile(r"backbone\.dark2\.1\.m\.(\d+)\.")
    blocks = len({m.group(1) for k in state_dict for m in [pattern.match(k)] if m})
    size = YOLOX_SIZES.get((width, blocks))
    if size is None:
        known = ", ".join(f"{s} ({w} channels, {n} blocks)" for (w, n), s in YOLOX_SIZES.items())
        raise EODCheckpointError(
            f"CSPDarknet with a {width}-channel stem ({STEM_KEY}) and {blocks} bottlenecks in "
            f"backbone.dark2.1.m: not one of the YOLOX sizes {known}"
        )
    for key in ("roi_head.obj_preds.0.weight", "roi_head.cls_preds.0.weight"):
        if key not in state_dict:
            raise EODCheckpointError(f"YOLOX-IP checkpoint without the key {key!r}")
    num_anchors = state_dict["roi_head.obj_preds.0.weight"].shape[0]
    cls_channels = state_dict["roi_head.cls_preds.0.weight"].shape[0]
    if cls_channels % num_anchors:
        raise EODCheckpointError(
            f"roi_head.cls_preds.0 has {cls_channels} output channels, not a multiple of the "
            f"{num_anchors} anchors per location that roi_head.obj_preds.0 has"
        )
    if num_anchors != CONFIG_NUM_ANCHORS:
        raise EODCheckpointError(
            f"{num_anchors} anchors per location (roi_head.obj_preds.0, the reference's "
            f"num_point): the YOLOX-IP configs build {CONFIG_NUM_ANCHORS} (scales 3 and 4 x stride)"
        )
    num_classes = cls_channels // num_anchors
    overrides = [f"model.num_classes={num_classes}"] if num_classes != CONFIG_NUM_CLASSES else []
    if loss not in (None, "efl", "eqfl"):
        raise ValueError(f"loss must be 'efl', 'eqfl' or None, got {loss!r}")
    return EODModelInfo(
        family="yolox_ip",
        size=size,
        num_classes=num_classes,
        num_anchors=num_anchors,
        config=_config(size, loss or "efl"),
        overrides=overrides,
        rules=YOLOX_IP_RULES,
        # Our YOLOX-IP uses nn.BatchNorm2d, whose counters the reference saved too.
        keeps_num_batches_tracked=True,
    )
