"""The FPN top block (P6 from the C5 lateral, P7 without ReLU) and the head with an IoU branch."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import math

import torch
from torch import nn

from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import Backbone
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K

from efl.modeling import FPNWithLateralTop, LastLevelP6P7FromLateral, RetinaNetHeadWithIoU


class _ThreeLevels(Backbone):
    """A stand-in bottom-up network: fixed random C3, C4, C5 with strides 8, 16, 32."""

    def forward(self, x):
        n = x.shape[0]
        g = torch.Generator().manual_seed(0)
        return {
            "res3": torch.randn(n, 8, 8, 8, generator=g),
            "res4": torch.randn(n, 16, 4, 4, generator=g),
            "res5": torch.randn(n, 32, 2, 2, generator=g),
        }

    def output_shape(self):
        return {
            "res3": ShapeSpec(channels=8, stride=8),
            "res4": ShapeSpec(channels=16, stride=16),
            "res5": ShapeSpec(channels=32, stride=32),
        }


def test_p6_comes_from_c5_lateral_and_p7_follows_p6_without_relu():
    torch.manual_seed(0)
    fpn = FPNWithLateralTop(
        bottom_up=_ThreeLevels(),
        in_features=["res3", "res4", "res5"],
        out_channels=16,
        top_block=LastLevelP6P7FromLateral(in_channels=16, out_channels=16),
    )
    out = fpn(torch.zeros(1, 3, 64, 64))
    assert list(out) == ["p3", "p4", "p5", "p6", "p7"]
    assert [fpn.output_shape()[k].stride for k in out] == [8, 16, 32, 64, 128]
    c5 = fpn.bottom_up(torch.zeros(1, 3, 64, 64))["res5"]
    c5_lateral = fpn.fpn_lateral5(c5)
    p6 = fpn.top_block.p6(c5_lateral)
    torch.testing.assert_close(out["p6"], p6)
    assert (p6 < 0).any()  # so a ReLU before P7 would change it
    torch.testing.assert_close(out["p7"], fpn.top_block.p7(p6))
    # P5 is the output conv of the same lateral (no top-down input at the coarsest level)
    torch.testing.assert_close(out["p5"], fpn.fpn_output5(c5_lateral))


def test_head_outputs_anchor_major_channels_and_iou_branch_reads_the_box_tower():
    torch.manual_seed(0)
    head = RetinaNetHeadWithIoU(
        input_shape=[ShapeSpec(channels=32)] * 2, num_classes=5, num_anchors=2, conv_dims=[32, 32]
    )
    features = [torch.randn(2, 32, 6, 6), torch.randn(2, 32, 3, 3)]
    logits, deltas, ious = head(features)
    assert [t.shape for t in logits] == [(2, 10, 6, 6), (2, 10, 3, 3)]
    assert [t.shape for t in deltas] == [(2, 8, 6, 6), (2, 8, 3, 3)]
    assert [t.shape for t in ious] == [(2, 2, 6, 6), (2, 2, 3, 3)]
    assert sum(isinstance(m, nn.GroupNorm) for m in head.cls_subnet) == 2
    torch.testing.assert_close(
        head.cls_score.bias, torch.full((10,), -math.log((1 - 0.001) / 0.001))
    )
    # The IoU branch depends on the box tower only.
    with torch.no_grad():
        for p in head.cls_subnet.parameters():
            p.add_(1.0)
    _, deltas2, ious2 = head(features)
    torch.testing.assert_close(ious2[0], ious[0])
    torch.testing.assert_close(deltas2[0], deltas[0])
    # anchor-major: channel a*K + c is (anchor a, class c) after permute_to_N_HWA_K
    flat = permute_to_N_HWA_K(logits[0], 5)  # (2, 6*6*2, 5)
    torch.testing.assert_close(flat[1, (2 * 6 + 3) * 2 + 1, 4], logits[0][1, 1 * 5 + 4, 2, 3])
