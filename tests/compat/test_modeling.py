"""efl.compat.modeling: each reach into detectron2's modeling internals works, and each is still
needed by the installed detectron2."""
import torch

import detectron2.modeling.box_regression as box_regression
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import FPN, Backbone
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes
from efl.compat.modeling import dense_box_regression_loss, fpn_fuse_type, set_fpn_size_divisibility


class _TwoLevels(Backbone):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return {"c4": self.conv(x[:, :, ::16, ::16]), "c5": self.conv(x[:, :, ::32, ::32])}

    def output_shape(self):
        return {"c4": ShapeSpec(channels=8, stride=16), "c5": ShapeSpec(channels=8, stride=32)}


def _fpn(fuse_type="sum"):
    return FPN(bottom_up=_TwoLevels(), in_features=["c4", "c5"], out_channels=8, fuse_type=fuse_type)


def test_detectron2_still_keeps_the_dense_box_regression_loss_private():
    assert not hasattr(box_regression, "dense_box_regression_loss"), \
        "detectron2 exports it now: call the public name"


def test_dense_box_regression_loss_is_the_smooth_l1_and_giou_of_the_foreground_anchors():
    transform = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 4.0, 4.0]])
    gt = torch.tensor([[1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 8.0, 8.0]])
    deltas = torch.zeros(1, 2, 4)
    foreground = torch.tensor([[True, False]])
    l1 = dense_box_regression_loss([Boxes(anchors)], transform, [deltas], [gt], foreground,
                                   box_reg_loss_type="smooth_l1", smooth_l1_beta=0.0)
    # anchor 0: target deltas (0.1, 0.1, 0, 0) by hand; anchor 1 is background
    torch.testing.assert_close(l1, torch.tensor(0.2))
    giou = dense_box_regression_loss([Boxes(anchors)], transform, [deltas], [gt], foreground,
                                     box_reg_loss_type="giou", smooth_l1_beta=0.0)
    # boxes (0,0,10,10) and (1,1,11,11): intersection 81, union 119, enclosure 121
    torch.testing.assert_close(giou, torch.tensor(1 - (81 / 119 - (121 - 119) / 121)))


def test_detectron2_fpn_size_divisibility_is_still_read_only_and_fuse_type_private():
    assert isinstance(FPN.size_divisibility, property) and FPN.size_divisibility.fset is None, \
        "detectron2's FPN takes a size_divisibility now: pass it instead"
    assert not hasattr(_fpn(), "fuse_type"), "detectron2's FPN exposes fuse_type now: read it"


def test_fpn_size_divisibility_is_set_and_fuse_type_read():
    fpn = _fpn("avg")
    assert fpn.size_divisibility == 32 and fpn_fuse_type(fpn) == "avg" and fpn_fuse_type(_fpn()) == "sum"
    set_fpn_size_divisibility(fpn, 64)
    assert fpn.size_divisibility == 64
