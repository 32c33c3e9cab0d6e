"""The reference's (EOD / United-Perception) inference rules, for evaluating its released models
exactly as it does (docs/eod_checkpoints.md, "Reference inference"). Each rule is one function;
``EODInferenceRules`` says which of them ``ImprovedRetinaNet`` applies.

Boxes enter and leave every function in Detectron2's continuous coordinates ([x1, x2) covers
x2 - x1 pixels). The reference's R50 works in "+1" coordinates, where x2 is the last pixel
inside the box: its box is ours minus (0, 0, 1, 1), exactly in float32 for the values met here.
"""
from dataclasses import dataclass
from typing import Tuple

import torch
from torch import Tensor
from torchvision.ops import nms

__all__ = [
    "EODInferenceRules",
    "to_eod_coordinates",
    "clip_and_keep_nonempty",
    "class_offset_nms",
    "boxes_to_picture",
]

# The reference's merger separates classes by adding label x 4096 to the coordinates in float32
# (roi_predictor.py, RetinaMergerMultiCls.INF), which rounds them to 1/4 - 1/2 px for most labels.
EOD_CLASS_OFFSET = 4096.0

RULES = ("plus_one", "canvas_clip", "one_scale", "class_offset_nms", "topk_counts_anchors")
PRESETS = {
    "improved_baseline": ("plus_one", "class_offset_nms", "topk_counts_anchors"),
    "yolox_ip": ("canvas_clip", "one_scale", "class_offset_nms", "topk_counts_anchors"),
}


@dataclass(frozen=True)
class EODInferenceRules:
    """
    Which of the reference's inference rules to apply (all False: Detectron2's inference).

    - ``plus_one`` (R50): boxes in "+1" coordinates: clipped to [0, w - 1] x [0, h - 1], kept
      when x2 - x1 + 1 > 0 (a box decoded entirely outside the picture survives as a 1-px sliver
      on its border), NMS IoU with +1 widths, written back as x2 / s + 1.
    - ``canvas_clip`` (YOLOX-IP): boxes clipped to the padded canvas (the reference's
      ``image_info`` holds the 640 x 640 canvas), and not clipped again in the picture.
    - ``one_scale`` (YOLOX-IP): back to the picture with one scale, the resized longest side over
      the picture's, for both axes (Detectron2: each axis by its own ratio).
    - ``class_offset_nms``: class-aware NMS by adding (class + 1) x 4096 to float32 coordinates,
      with the rounding that brings (Detectron2: an exact per-class NMS).
    - ``topk_counts_anchors``: per level keep min(k, anchors left after clipping) (anchor, class)
      pairs (Detectron2: k pairs).

    Without ``plus_one`` and ``canvas_clip`` boxes are clipped to the picture before the top-k
    (``clip_boxes_before_nms``) and after scaling back (Detectron2's ``detector_postprocess``).
    """

    plus_one: bool = False
    canvas_clip: bool = False
    one_scale: bool = False
    class_offset_nms: bool = False
    topk_counts_anchors: bool = False

    @classmethod
    def parse(cls, spec) -> "EODInferenceRules":
        """``spec``: None or "" (no rule), a preset ("improved_baseline", "yolox_ip"), or rule names joined by
        "+" ("plus_one+class_offset_nms"); an ``EODInferenceRules`` is returned as is."""
        if isinstance(spec, cls):
            return spec
        if not spec:
            return cls()
        if not isinstance(spec, str):
            raise TypeError(f"eod_inference must be a string such as 'improved_baseline', got {spec!r}")
        names = PRESETS.get(spec, tuple(n for n in spec.split("+") if n))
        unknown = [n for n in names if n not in RULES]
        if unknown:
            raise ValueError(
                f"eod_inference={spec!r}: unknown rule(s) {unknown}; use a preset "
                f"({', '.join(PRESETS)}) or rules from {', '.join(RULES)} joined by '+'"
            )
        if "plus_one" in names and "canvas_clip" in names:
            raise ValueError(f"eod_inference={spec!r}: plus_one (R50) and canvas_clip (YOLOX-IP) "
                             "are the rules of different models")
        return cls(**{n: True for n in names})

    @property
    def any(self) -> bool:
        return any(getattr(self, n) for n in RULES)


def to_eod_coordinates(boxes: Tensor, plus_one: bool) -> Tensor:
    """Our decoded boxes in the reference's coordinates: x2, y2 minus 1 with ``plus_one`` (the
    reference decodes x2 = centre + w / 2 - 1, the same float32 operations)."""
    return boxes - boxes.new_tensor([0.0, 0.0, 1.0, 1.0]) if plus_one else boxes


def clip_and_keep_nonempty(boxes: Tensor, clip_size: Tuple[int, int], plus_one: bool):
    """Clip boxes (N, 4) of the reference's coordinates to ``clip_size`` (h, w) and return
    ``(boxes, keep)``, keep the mask of the non-empty ones: the reference's ``clip_bbox`` and
    ``filter_by_size`` with min size 0. With ``plus_one`` the clip is to [0, w - 1] and a box is
    kept when x2 - x1 + 1 > 0, so one decoded entirely outside the picture survives as a 1-px
    sliver on its border."""
    height, width = clip_size
    offset = 1.0 if plus_one else 0.0
    boxes = boxes.clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=width - offset)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=height - offset)
    keep = (boxes[:, 2] - boxes[:, 0] + offset > 0) & (boxes[:, 3] - boxes[:, 1] + offset > 0)
    return boxes, keep


def class_offset_nms(boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float,
                     plus_one: bool) -> Tensor:
    """The reference's class-aware NMS on boxes of its coordinates: indices kept, by decreasing
    score.

    The coordinates get (class + 1) x 4096 added in float32, as the reference's merger does; its
    IoU uses widths x2 - x1 + 1 with ``plus_one``. The shifted values stay below 2**23, where
    float32 spacing is at most 1/2, so adding 1 to the shifted x2, y2 is exact and torchvision's
    NMS on [x1, y1, x2 + 1, y2 + 1] computes the reference's IoU bit for bit (the same
    differences, areas and inter / (area_a + area_b - inter)), suppressing above the threshold
    as the reference's CUDA kernel does (its CPU loop suppresses at >=: docs/eod_checkpoints.md)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()
    shifted = boxes + ((classes.to(boxes.dtype) + 1) * EOD_CLASS_OFFSET)[:, None]
    if plus_one:
        shifted = shifted + shifted.new_tensor([0.0, 0.0, 1.0, 1.0])
    return nms(shifted, scores.float(), iou_threshold)


def boxes_to_picture(boxes: Tensor, resized_size: Tuple[int, int], picture_size: Tuple[int, int],
                     plus_one: bool, one_scale: bool) -> Tensor:
    """Boxes of the reference's coordinates on the resized image -> our boxes on the picture, as
    the reference writes its results (coco_dataset.py ``dump``): divided by the resize scale (per
    axis: resized / picture size; ``one_scale``: the longest sides' ratio for both axes), then
    w = x2 - x1 + 1 with ``plus_one``, i.e. x2 / s + 1 in our coordinates. No clipping: the
    reference's clip there writes into a copy and changes nothing."""
    (h, w), (height, width) = resized_size, picture_size
    if one_scale:
        scale_y = scale_x = max(h, w) / max(height, width)
    else:
        scale_y, scale_x = h / height, w / width
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2] / scale_x
    out[:, 1::2] = out[:, 1::2] / scale_y
    if plus_one:
        out = out + out.new_tensor([0.0, 0.0, 1.0, 1.0])
    return out
