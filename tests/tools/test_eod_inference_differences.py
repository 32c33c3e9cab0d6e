"""tools/eod_inference_differences.py: its re-statements of the reference's inference rules, on
hand-made cases."""
import importlib.util
import math
import os

import torch
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes, Instances

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "eod_inference_differences", os.path.join(REPO, "tools", "eod_inference_differences.py"))
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def test_legacy_decoding_by_hand():
    # Anchor (0, 0, 9, 9) inclusive: width 10, centre 5. dx = 0.1 -> centre 6; dw = log 2 -> 20.
    box = tool.legacy_decode(torch.tensor([[0.1, 0.0, math.log(2.0), 0.0]]),
                             torch.tensor([[0.0, 0.0, 9.0, 9.0]]))
    torch.testing.assert_close(box, torch.tensor([[-4.0, 0.0, 15.0, 9.0]]))


def test_plus_one_convention_read_as_x2_plus_1_is_detectron2_continuous_decoding():
    # Why the legacy variant changes no detection: with inclusive boxes read as
    # [x1, y1, x2 + 1, y2 + 1], the reference's anchors, decoding and IoU are Detectron2's.
    g = torch.Generator().manual_seed(0)
    anchors = torch.rand(50, 2, generator=g) * 100
    anchors = torch.cat([anchors, anchors + 8 + torch.rand(50, 2, generator=g) * 100], dim=1)
    deltas = torch.randn(50, 4, generator=g)
    legacy = tool.legacy_decode(deltas, anchors - torch.tensor([0, 0, 1, 1.0])) + torch.tensor([0, 0, 1, 1.0])
    continuous = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0)).apply_deltas(deltas, anchors)
    torch.testing.assert_close(legacy, continuous, rtol=1e-5, atol=1e-4)


def test_unmatched_counts_detections_without_a_same_class_counterpart():
    def inst(boxes, classes):
        return Instances((100, 100), pred_boxes=Boxes(torch.tensor(boxes, dtype=torch.float32)),
                         pred_classes=torch.tensor(classes), scores=torch.ones(len(classes)))

    a = inst([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 60, 60]], [1, 2, 3])
    b = inst([[0, 0, 10, 10], [20, 20, 40, 40], [50, 50, 70, 70]], [1, 5, 3])
    # box 0 matches; box 1 has another class; box 2 has IoU 0.25
    assert tool.unmatched(a, b) == 2
    assert tool.unmatched(a, a) == 0
    assert tool.unmatched(a, inst(torch.zeros(0, 4).tolist(), [])) == 3
