"""The reference's (EOD) inference rules (efl.modeling.eod_inference, docs/eod_checkpoints.md) on
hand cases taken from its source: coordinates in its "+1" convention are ours minus (0, 0, 1, 1)."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import numpy as np
import pytest
import torch

from detectron2.layers import batched_nms
from detectron2.structures import Boxes

from efl.modeling.eod_inference import (
    EODInferenceRules,
    boxes_to_picture,
    class_offset_nms,
    clip_and_keep_nonempty,
    to_eod_coordinates,
)


def test_our_decoding_minus_1_is_the_reference_plus_one_decoding_bit_for_bit():
    # The reference decodes on +1 anchors (ours minus (0, 0, 1, 1)) with widths x2 - x1 + 1 and
    # x2 = centre + w / 2 - 1 (bbox_helper.py offset2bbox, re-stated in tests/tools).
    from detectron2.modeling.box_regression import Box2BoxTransform

    from tests.tools.eod_postprocess_reference import eod_anchors, eod_decode

    anchors = eod_anchors(20, 30, 8, [6, 8], aligned=False)
    ours_anchors = anchors + torch.tensor([0.0, 0, 1, 1])  # Detectron2's cell-centred anchors
    deltas = torch.randn(len(anchors), 4, generator=torch.Generator().manual_seed(0))
    ours = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0)).apply_deltas(deltas, ours_anchors)
    assert torch.equal(to_eod_coordinates(ours, plus_one=True), eod_decode(anchors, deltas, 1))


def test_r50_box_decoded_outside_the_picture_survives_as_a_1px_sliver():
    # Picture 640 wide, 480 high. Our box [700, 10, 750, 50] lies right of it; in +1 coordinates
    # [700, 10, 749, 49]. The reference clips x to [0, 639] (bbox_helper.py clip_bbox, offset 1)
    # -> [639, 10, 639, 49] and keeps it: x2 - x1 + 1 = 1 > 0 (filter_by_size, min size 0).
    ours = torch.tensor([[700.0, 10.0, 750.0, 50.0], [-30.0, 5.0, -10.0, 20.0]])
    boxes, keep = clip_and_keep_nonempty(to_eod_coordinates(ours, plus_one=True), (480, 640), True)
    assert keep.tolist() == [True, True]
    torch.testing.assert_close(boxes, torch.tensor([[639.0, 10.0, 639.0, 49.0], [0.0, 5.0, 0.0, 19.0]]))
    # Detectron2's rule (continuous coordinates, clip to [0, 640]) drops both.
    boxes, keep = clip_and_keep_nonempty(ours, (480, 640), plus_one=False)
    assert keep.tolist() == [False, False]


def test_yolox_box_is_clipped_to_the_canvas_not_the_picture():
    # A 640 x 427 picture on the 640 x 640 canvas: a box down to y = 500 keeps y2 = 500 when
    # clipped to the canvas (the reference's image_info holds the canvas), 427 on the picture.
    box = torch.tensor([[600.0, 400.0, 700.0, 500.0]])
    canvas, _ = clip_and_keep_nonempty(box, (640, 640), plus_one=False)
    picture, _ = clip_and_keep_nonempty(box, (427, 640), plus_one=False)
    torch.testing.assert_close(canvas, torch.tensor([[600.0, 400.0, 640.0, 500.0]]))
    torch.testing.assert_close(picture, torch.tensor([[600.0, 400.0, 640.0, 427.0]]))


def test_r50_x2_is_written_back_as_x2_over_s_plus_1():
    # Picture 600 x 800 tested at 480 x 640 (s = 0.8). +1 box [10, 20, 109, 59]: the reference
    # writes x = 10 / 0.8 = 12.5, w = 109 / 0.8 - 12.5 + 1 = 124.75 -> x2 = 137.25 (Detectron2:
    # (109 + 1) / 0.8 = 137.5); y2 = 59 / 0.8 + 1 = 74.75 (Detectron2: 75).
    out = boxes_to_picture(torch.tensor([[10.0, 20.0, 109.0, 59.0]]), (480, 640), (600, 800),
                           plus_one=True, one_scale=False)
    torch.testing.assert_close(out, torch.tensor([[12.5, 25.0, 137.25, 74.75]]))


def test_yolox_scales_both_axes_by_the_longest_side():
    # Picture 427 x 641 -> longest side 640: s = 640 / 641 for both axes, though the resized
    # height 426 gives 426 / 427 for y per axis.
    box = torch.tensor([[64.0, 64.0, 128.0, 128.0]])
    s = 640 / 641
    out = boxes_to_picture(box, (426, 640), (427, 641), plus_one=False, one_scale=True)
    torch.testing.assert_close(out, box / s)
    per_axis = boxes_to_picture(box, (426, 640), (427, 641), plus_one=False, one_scale=False)
    assert abs(float(per_axis[0, 3]) - 128 * 427 / 426) < 1e-4


# (+1 boxes, class 1000): label 1001 -> 1001 x 4096 = 4,100,096 added in float32, spacing 1/4.
FLIP_SUPPRESSED_EXACTLY = ([8.9, 6.7, 33.7, 32.0], [6.7, 1.2, 43.7, 28.3])  # IoU 0.5012 -> 0.4992
FLIP_KEPT_EXACTLY = ([33.3, 13.2, 74.5, 37.0], [28.2, 17.3, 61.9, 35.4])  # IoU 0.4942 -> 0.5015


def plus_one_iou(a, b):
    """IoU of two +1 boxes in float64, no rounding (bbox_helper.py's formula)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = iw * ih
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def rounded(box, label):
    offset = np.float32(label * 4096)
    return [float((np.float32(v) + offset) - offset) for v in box]


@pytest.mark.parametrize("pair,exact_keeps", [(FLIP_SUPPRESSED_EXACTLY, 1), (FLIP_KEPT_EXACTLY, 2)])
def test_the_4096_class_offset_rounds_an_iou_across_the_threshold(pair, exact_keeps):
    a, b = pair
    exact, after = plus_one_iou(a, b), plus_one_iou(rounded(a, 1001), rounded(b, 1001))
    assert (exact > 0.5) != (after > 0.5)  # the hand case is a flip
    boxes, scores, classes = torch.tensor([a, b]), torch.tensor([0.9, 0.8]), torch.tensor([1000, 1000])
    reference = class_offset_nms(boxes, scores, classes, 0.5, plus_one=True)
    assert len(reference) == 3 - exact_keeps
    # exact +1 NMS: Detectron2's NMS on the boxes read as continuous [x1, y1, x2 + 1, y2 + 1]
    exact_nms = batched_nms(boxes + torch.tensor([0, 0, 1.0, 1.0]), scores, classes, 0.5)
    assert len(exact_nms) == exact_keeps
    # class 0 (offset 4096, spacing 1/2048) barely rounds: the exact decision
    assert len(class_offset_nms(boxes, scores, torch.zeros(2, dtype=torch.long), 0.5, True)) == exact_keeps


def greedy_plus_one_nms(boxes, scores, classes, threshold, offset):
    """The reference's merger and NMS loop re-stated (roi_predictor.py RetinaMergerMultiCls, nms
    kernel): sort by score, add label x 4096 in float32, then the kernel's greedy loop with widths
    x2 - x1 + offset (tests/tools/eod_postprocess_reference.py's eod_nms)."""
    from tests.tools.eod_postprocess_reference import eod_nms

    order = torch.argsort(scores, descending=True)
    shifted = (boxes[order] + ((classes[order] + 1).float() * 4096)[:, None]).float()
    kept = eod_nms(torch.cat([shifted, scores[order, None].float()], dim=1), threshold, offset)
    return [int(order[i]) for i in kept]


@pytest.mark.parametrize("plus_one", [True, False])
def test_class_offset_nms_equals_the_reference_loop_on_random_boxes(plus_one):
    g = torch.Generator().manual_seed(0)
    n = 3000
    xy = torch.rand(n, 2, generator=g) * 600
    wh = torch.rand(n, 2, generator=g) * 80 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    # few classes, many overlaps; class ids up to 1202 give the coarse (1/2 px) rounding
    classes = torch.tensor([0, 7, 600, 1202])[torch.randint(0, 4, (n,), generator=g)]
    scores = torch.rand(n, generator=g)
    for threshold in (0.5, 0.65):
        ours = class_offset_nms(boxes, scores, classes, threshold, plus_one=plus_one).tolist()
        assert ours == greedy_plus_one_nms(boxes, scores, classes, threshold, 1 if plus_one else 0)


def test_rule_specs_parse_presets_and_names_and_refuse_unknown_ones():
    r50 = EODInferenceRules.parse("improved_baseline")
    assert r50.plus_one and r50.class_offset_nms and r50.topk_counts_anchors
    assert not (r50.canvas_clip or r50.one_scale)
    yolox = EODInferenceRules.parse("yolox_ip")
    assert yolox.canvas_clip and yolox.one_scale and not yolox.plus_one
    assert EODInferenceRules.parse("plus_one") == EODInferenceRules(plus_one=True)
    assert not EODInferenceRules.parse(None).any
    with pytest.raises(ValueError, match=r"unknown rule\(s\) \['plus_two'\]"):
        EODInferenceRules.parse("plus_one+plus_two")
    with pytest.raises(ValueError, match="different models"):
        EODInferenceRules.parse("plus_one+canvas_clip")


def _small_model(**overrides):
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load("configs/common/models/improved_retinanet_small.py")
    cfg = LazyConfig.apply_overrides(cfg, [f"model.{k}={v}" for k, v in overrides.items()])
    return instantiate(cfg.model).eval()


def test_topk_per_level_counts_anchors_in_reference_mode():
    # 3 anchors x 4 classes on one level, k = 6: the reference keeps min(6, 3 anchors) = 3
    # (anchor, class) pairs (roi_predictor.py, _pre_nms_top_n), Detectron2 6.
    anchors = Boxes(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]))
    scores = torch.arange(12, dtype=torch.float32).view(3, 4) / 12
    deltas = torch.zeros(3, 4)
    for spec, expected in (("improved_baseline", 3), ("plus_one", 6)):
        model = _small_model(eod_inference=spec, test_topk_candidates=6)
        level = model._eod_decode_level(anchors, scores, deltas, (64, 64))
        assert len(level) == expected, spec
        torch.testing.assert_close(level.scores, torch.tensor([11.0, 10, 9, 8, 7, 6])[:expected] / 12)
