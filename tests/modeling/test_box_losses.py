"""IoU targets and the IoU-weighted GIoU loss against hand computations and fvcore."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import torch
from fvcore.nn import giou_loss

from detectron2.structures import Boxes, pairwise_iou

from efl.modeling import aligned_iou, iou_weighted_giou_loss


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


def test_aligned_iou_is_the_diagonal_of_detectron2_pairwise_iou():
    torch.manual_seed(1)
    xy = torch.rand(20, 2) * 20
    a = torch.cat([xy, xy + torch.rand(20, 2) * 10 + 0.5], 1)
    xy = torch.rand(20, 2) * 20
    b = torch.cat([xy, xy + torch.rand(20, 2) * 10 + 0.5], 1)
    torch.testing.assert_close(aligned_iou(a, b), pairwise_iou(Boxes(a), Boxes(b)).diagonal())
    # degenerate pair: no NaN
    assert aligned_iou(torch.zeros(1, 4), torch.zeros(1, 4)).item() == 0.0
