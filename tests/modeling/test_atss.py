"""ATSS assignment on hand-computed cases (docs/improved_baseline.md §2)."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import pytest
import torch

from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.structures import Boxes, Instances

from efl.modeling import ATSSAssigner

NUM_CLASSES = 3
BACKGROUND = NUM_CLASSES


def grid_anchors(sizes, strides, image_size=64):
    """Cell-centred square anchors, one Boxes per level, Detectron2's anchor-major order."""
    generator = DefaultAnchorGenerator(
        sizes=sizes, aspect_ratios=[1.0], strides=strides, offset=0.5
    )
    features = [torch.zeros(1, 1, image_size // s, image_size // s) for s in strides]
    return generator(features)


def gt(boxes, classes, image_size=(64, 64)):
    instances = Instances(image_size)
    instances.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    instances.gt_classes = torch.tensor(classes, dtype=torch.int64)
    return instances


# One level, stride 16, 16x16 anchors on a 4x4 grid: anchor i = row * 4 + col, centre
# (8 + 16 col, 8 + 16 row).
ONE_LEVEL = dict(sizes=[[16]], strides=[16])


def test_only_candidates_at_or_above_mean_plus_std_are_positive():
    # GT [8, 8, 40, 40], centre (24, 24). The 5 nearest anchors: #5 (distance 0, IoU 256/1024 =
    # 0.25) and its 4 neighbours #1, #4, #6, #9 (distance 16, IoU 128/1152 = 0.111).
    # mean 0.1389, unbiased std 0.0621 -> threshold 0.2010: only #5 is positive.
    labels, boxes = ATSSAssigner(topk=5)(grid_anchors(**ONE_LEVEL), gt([8, 8, 40, 40], [2]), NUM_CLASSES)
    expected = torch.full((16,), BACKGROUND)
    expected[5] = 2
    assert torch.equal(labels, expected)
    assert torch.equal(boxes[5], torch.tensor([8.0, 8.0, 40.0, 40.0]))
    assert torch.equal(boxes[labels == BACKGROUND], torch.zeros(15, 4))


def test_all_candidates_positive_when_their_ious_are_equal():
    # GT [0, 0, 32, 32], centre (16, 16): 4 nearest anchors #0, #1, #4, #5 all have IoU 0.25,
    # std 0, threshold 0.25, and all centres (8 or 24) are inside the box.
    labels, _ = ATSSAssigner(topk=4)(grid_anchors(**ONE_LEVEL), gt([0, 0, 32, 32], [1]), NUM_CLASSES)
    assert (labels == 1).nonzero().flatten().tolist() == [0, 1, 4, 5]


def test_candidate_above_threshold_with_centre_outside_the_box_is_negative():
    # GT [20, 20, 23, 23], centre (21.5, 21.5). Nearest 4: #5 (IoU 9/256 = 0.035), #4, #1 (IoU 0),
    # #0 (IoU 0): threshold 0.0264, so #5 passes the IoU test, but its centre (24, 24) is outside.
    labels, _ = ATSSAssigner(topk=4)(grid_anchors(**ONE_LEVEL), gt([20, 20, 23, 23], [0]), NUM_CLASSES)
    assert (labels == BACKGROUND).all()


def test_anchor_positive_for_two_gts_takes_the_higher_iou():
    # Anchor #5 = [16, 16, 32, 32] is positive for GT0 [8, 8, 40, 40] (IoU 0.25, as above) and for
    # GT1 = [16, 16, 32, 32] (IoU 1; its threshold is 0.2 + 0.447 = 0.647): it takes GT1.
    instances = gt([[8, 8, 40, 40], [16, 16, 32, 32]], [0, 1])
    labels, boxes = ATSSAssigner(topk=5)(grid_anchors(**ONE_LEVEL), instances, NUM_CLASSES)
    assert (labels != BACKGROUND).nonzero().flatten().tolist() == [5]
    assert labels[5] == 1
    assert torch.equal(boxes[5], torch.tensor([16.0, 16.0, 32.0, 32.0]))


def test_candidates_are_taken_per_level_with_level_offsets():
    # Level 0: the 4x4 grid of 16-px anchors (indices 0..15); level 1: one 64-px anchor
    # [0, 0, 64, 64] (index 16). GT = [0, 0, 64, 64]: level-0 candidates #5, #6, #9, #10 have IoU
    # 256/4096 = 0.0625, the level-1 anchor IoU 1; threshold 0.25 + 0.419 = 0.669: only #16.
    anchors = grid_anchors(sizes=[[16], [64]], strides=[16, 64])
    assert [len(a) for a in anchors] == [16, 1]
    labels, _ = ATSSAssigner(topk=4)(anchors, gt([0, 0, 64, 64], [2]), NUM_CLASSES)
    assert (labels != BACKGROUND).nonzero().flatten().tolist() == [16]


@pytest.mark.parametrize(
    "boxes",
    [
        [],  # image without annotations
        [[10, 10, 11, 40]],  # width 1: dropped
        [[10, 10, 10, 10]],  # zero area
        [[100, 100, 140, 120]],  # entirely outside the 64x64 image
    ],
    ids=["empty", "width_one", "zero_area", "outside_image"],
)
def test_degenerate_or_missing_gts_give_all_background(boxes):
    labels, matched = ATSSAssigner()(grid_anchors(**ONE_LEVEL), gt(boxes, [0] * len(boxes)), NUM_CLASSES)
    assert labels.shape == (16,) and (labels == BACKGROUND).all()
    assert matched.shape == (16, 4)


def test_partly_outside_box_still_gets_positives_inside_the_image():
    # GT [32, 32, 96, 96] sticks out of the 64x64 image; its centre (64, 64) is clamped to the
    # corner, whose 4 nearest anchors #10, #11, #14, #15 each have IoU 256/4096 (std 0): positive.
    labels, _ = ATSSAssigner(topk=4)(grid_anchors(**ONE_LEVEL), gt([32, 32, 96, 96], [1]), NUM_CLASSES)
    assert (labels == 1).nonzero().flatten().tolist() == [10, 11, 14, 15]


def test_non_finite_gt_box_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="finite"):
        ATSSAssigner()(grid_anchors(**ONE_LEVEL), gt([0, 0, float("nan"), 8], [0]), NUM_CLASSES)


def test_reference_centre_rule_for_plus_one_boxes_gives_4_locations_where_0_01_gives_9():
    # The reference (R50, "+1" boxes) takes anchor centres (x1 + x2) / 2 of +1 anchors, i.e. ours
    # minus 0.5, and +1 ground truths, ours minus (0, 0, 1, 1), then asks centre - x1 > 0.01 and
    # x2 - centre > 0.01 (roi_supervisor.py): in our coordinates a centre more than 0.51 px inside.
    # One level, stride 8, 64 x 64 anchors centred at 4, 12, 20, ... The ground truth
    # [11.75, 11.75, 29.75, 29.75] (18 x 18, inside all 9 nearest anchors: every candidate has IoU
    # 324 / 4096, std 0, so all pass the IoU threshold) has its left and top edges 0.25 px outside
    # the centre column / row 12: positive locations {12, 20, 28}^2 with 0.01, {20, 28}^2 with 0.51.
    anchors = grid_anchors([[64]], [8], image_size=64)
    target = gt([[11.75, 11.75, 29.75, 29.75]], [1])
    centres = anchors[0].get_centers()
    for margin, expected in ((0.01, 9), (0.51, 4)):
        labels, _ = ATSSAssigner(topk=9, center_margin=margin)(anchors, target, NUM_CLASSES)
        positive = centres[labels == 1]
        assert len(positive) == expected, margin
    # the reference's own test in its coordinates, on the 9 candidates
    ref_centres = centres - 0.5
    x1, y1, x2, y2 = 11.75, 11.75, 28.75, 28.75
    near = ((centres - torch.tensor([20.75, 20.75])).norm(dim=1).argsort()[:9])
    c = ref_centres[near]
    inside = (c[:, 0] - x1 > 0.01) & (c[:, 1] - y1 > 0.01) & (x2 - c[:, 0] > 0.01) & (y2 - c[:, 1] > 0.01)
    assert int(inside.sum()) == 4


@pytest.mark.parametrize("config,margin", [
    ("configs/efl_improved_baseline_r50_2x_rfs.py", 0.51),
    ("configs/efl_improved_baseline_r101_2x_rfs.py", 0.51),
    ("configs/efl_oids_r50_2x_random.py", 0.51),
    ("configs/efl_oids_r101_2x_random.py", 0.51),
    ("configs/efl_yolox_ip_s_300e_rfs.py", 0.01),  # YOLOX-IP's boxes are continuous ("aligned")
])
def test_configs_use_the_reference_centre_rule_of_their_family(config, margin):
    from detectron2.config import LazyConfig, instantiate

    assert instantiate(LazyConfig.load(config).model.anchor_labeler).center_margin == margin
