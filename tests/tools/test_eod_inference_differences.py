"""tools/eod_inference_differences.py: its matching of detections, on a hand-made case (the rules
themselves: tests/modeling/test_eod_inference.py, tests/tools/test_eod_reference_detections.py)."""
import torch
from detectron2.structures import Boxes, Instances

from tests.scripts import load_script

tool = load_script("tools/eod_inference_differences.py")


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
