"""The loss's unclamped gradient ratio and finding the losses of a model."""
import torch
from torch import nn

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss, find_equalized_losses

from .test_statistics import NUM_CLASSES, batch


def test_gradient_ratio_is_the_unclamped_ratio_of_the_buffers():
    loss = EqualizedFocalLoss(3)
    loss.pos_grad.copy_(torch.tensor([2.0, 1.0, 0.0]))
    loss.neg_grad.copy_(torch.tensor([1.0, 4.0, 3.0]))
    torch.testing.assert_close(loss.gradient_ratio(), torch.tensor([2.0, 0.25, 0.0]))


def test_training_sets_g_to_the_clamped_gradient_ratio():
    loss = EqualizedQualityFocalLoss(NUM_CLASSES)
    for seed in range(3):
        logits, labels, scores = batch(seed)
        loss(logits, labels, scores, 10.0)
    ratio = loss.gradient_ratio()
    assert torch.equal(loss.pos_neg, ratio.clamp(0, 1))
    assert not ratio.requires_grad and (ratio < 1).any()


class _Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.head = nn.Module()
        self.head.cls_loss = EqualizedFocalLoss(4)
        self.aux_loss = EqualizedQualityFocalLoss(4)


class _Wrapper(nn.Module):  # what DDP looks like to named_modules()
    def __init__(self, module):
        super().__init__()
        self.module = module


def test_find_equalized_losses_returns_every_loss_with_its_path():
    model = _Detector()
    found = find_equalized_losses(_Wrapper(model))
    assert [(name, m) for name, m in found] == [
        ("module.head.cls_loss", model.head.cls_loss), ("module.aux_loss", model.aux_loss)
    ]
    assert find_equalized_losses(nn.Linear(2, 2)) == []
