"""The detector parts: IoU targets, box-loss terms, IoU-branch loss and normaliser against hand
computations, fvcore and Detectron2."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import math

import torch
from fvcore.nn import giou_loss

from detectron2.structures import Boxes, pairwise_iou

from detectron2.modeling.box_regression import Box2BoxTransform

from efl.modeling import (
    AnchorDeltaL1Loss,
    IoUBranchLoss,
    LossNormalizers,
    MeanPositivesNormalizer,
    PositiveSamples,
    iou_weighted_giou_loss,
)


def test_iou_weighted_giou_matches_hand_computation():
    # pred [0,0,2,2] vs gt [1,1,3,3]: intersection 1, union 7, enclosing box 9,
    # GIoU = 1/7 - 2/9, loss = 1 - GIoU = 1.0794; weight 0.5. Second pair identical: loss 0.
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [4.0, 4.0, 8.0, 6.0]], requires_grad=True)
    gt = torch.tensor([[1.0, 1.0, 3.0, 3.0], [4.0, 4.0, 8.0, 6.0]])
    weights = torch.tensor([0.5, 0.9])
    loss = iou_weighted_giou_loss(pred, gt, weights, normalizer=2.0)
    expected = 0.5 * (1 - (1 / 7 - 2 / 9)) / 2.0
    torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_iou_weighted_giou_equals_weighted_fvcore_giou_and_sends_no_gradient_to_weights():
    torch.manual_seed(0)
    xy = torch.rand(50, 2) * 50
    pred = torch.cat([xy, xy + torch.rand(50, 2) * 30 + 1], 1).requires_grad_()
    xy = torch.rand(50, 2) * 50
    gt = torch.cat([xy, xy + torch.rand(50, 2) * 30 + 1], 1)
    weights = torch.rand(50, requires_grad=True)
    loss = iou_weighted_giou_loss(pred, gt, weights, normalizer=torch.tensor(3.5))
    expected = (giou_loss(pred, gt, reduction="none") * weights.detach()).sum() / 3.5
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert weights.grad is None and pred.grad is not None


def test_iou_weighted_giou_of_no_positives_is_zero_and_keeps_the_graph():
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = iou_weighted_giou_loss(pred, torch.zeros(0, 4), torch.zeros(0), normalizer=1.0)
    assert loss.item() == 0.0 and loss.requires_grad


def positives_of(anchors, deltas, gt_boxes, iou_logits=None):
    """PositiveSamples of one image whose anchors are all positive."""
    n = anchors.shape[0]
    return PositiveSamples.gather(
        anchors, deltas[None], gt_boxes[None], torch.ones(1, n, dtype=torch.bool),
        Box2BoxTransform([1.0, 1.0, 1.0, 1.0]), None if iou_logits is None else iou_logits[None],
    )


def test_iou_targets_are_the_diagonal_of_detectron2_pairwise_iou_of_detached_predictions():
    torch.manual_seed(1)
    xy = torch.rand(20, 2) * 20
    anchors = torch.cat([xy, xy + torch.rand(20, 2) * 10 + 0.5], 1)
    xy = torch.rand(20, 2) * 20
    gt = torch.cat([xy, xy + torch.rand(20, 2) * 10 + 0.5], 1)
    deltas = (torch.randn(20, 4) * 0.3).requires_grad_()
    positives = positives_of(anchors, deltas, gt)
    pred = Box2BoxTransform([1.0] * 4).apply_deltas(deltas.detach(), anchors)
    torch.testing.assert_close(positives.iou_targets, pairwise_iou(Boxes(pred), Boxes(gt)).diagonal())
    assert not positives.iou_targets.requires_grad and positives.pred_boxes.requires_grad


def test_iou_target_of_a_degenerate_pair_is_zero_not_nan():
    anchors = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    positives = positives_of(anchors, torch.zeros(1, 4), torch.zeros(1, 4))
    assert positives.iou_targets.item() == 0.0


def test_anchor_delta_l1_is_the_mean_over_positives_times_four_of_encoded_deltas():
    # anchor [0,0,10,10], gt [2,2,12,12]: dx = dy = 0.2, dw = dh = 0; prediction all 0.1
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 4.0, 8.0]])
    gt = torch.tensor([[2.0, 2.0, 12.0, 12.0], [0.0, 0.0, 8.0, 8.0]])
    deltas = torch.full((2, 4), 0.1, requires_grad=True)
    # second pair: centre x 2 -> 4, w 4 -> 8: dx = 0.5, dy = 0, dw = ln 2, dh = 0
    expected = (0.1 + 0.1 + 0.1 + 0.1) + (0.4 + 0.1 + abs(0.1 - math.log(2)) + 0.1)
    loss = AnchorDeltaL1Loss()(positives_of(anchors, deltas, gt), None)["loss_l1"]
    torch.testing.assert_close(loss, torch.tensor(expected / 8))
    loss.backward()
    assert deltas.grad is not None


def test_anchor_delta_l1_without_positives_is_zero_and_keeps_the_graph():
    deltas = torch.zeros(0, 4, requires_grad=True)
    loss = AnchorDeltaL1Loss()(positives_of(torch.zeros(0, 4), deltas, torch.zeros(0, 4)), None)
    assert loss["loss_l1"].item() == 0.0 and loss["loss_l1"].requires_grad


def test_iou_branch_loss_is_bce_against_iou_targets_over_the_positive_normaliser():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 9.0, 9.0]])
    gt = torch.tensor([[0.0, 0.0, 10.0, 5.0], [5.0, 5.0, 9.0, 9.0]])  # IoU 0.5 and 1
    logits = torch.tensor([0.3, -1.2], requires_grad=True)
    positives = positives_of(anchors, torch.zeros(2, 4), gt, iou_logits=logits)
    normalizers = LossNormalizers(torch.tensor(4.0), torch.tensor(1.0))
    loss = IoUBranchLoss()(positives, normalizers)["loss_iou"]

    def bce(x, t):
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    torch.testing.assert_close(loss, torch.tensor((bce(0.3, 0.5) + bce(-1.2, 1.0)) / 4.0))


def test_mean_positives_normaliser_clamps_at_one_with_one_process():
    normalizers = MeanPositivesNormalizer()(torch.tensor(0), torch.tensor(0.25))
    assert normalizers.positives.item() == 1.0 and normalizers.iou_target_sum.item() == 1.0
    normalizers = MeanPositivesNormalizer()(torch.tensor(7), torch.tensor(3.5))
    assert normalizers.positives.item() == 7.0 and normalizers.iou_target_sum.item() == 3.5
