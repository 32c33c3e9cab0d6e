# A tiny improved baseline for the CPU demo: half-width ResNet-18 (BasicBlock) trained from scratch
# with BatchNorm, 64-channel FPN P3-P5, 2 GN head convs of 64 channels, anchors stride x {3, 4}
# (sized for ~160-px images). Same assigner, losses and inference as the full model.
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import BasicStem, ResNet
from detectron2.modeling.backbone.resnet import BasicBlock

from .improved_retinanet import model

_widths = [32, 64, 128, 256]  # res2..res5
_strides = [1, 2, 2, 2]

model.backbone.bottom_up = L(ResNet)(
    stem=L(BasicStem)(in_channels=3, out_channels=32, norm="BN"),
    stages=[
        L(ResNet.make_stage)(
            block_class=BasicBlock,
            num_blocks=2,
            in_channels=in_channels,
            out_channels=out_channels,
            stride_per_block=[stride, 1],
            norm="BN",
        )
        for in_channels, out_channels, stride in zip([32] + _widths[:-1], _widths, _strides)
    ],
    out_features=["res3", "res4", "res5"],
    # from scratch: nothing frozen
    freeze_at=0,
)
model.backbone.out_channels = 64
model.backbone.top_block = None
model.head.input_shape = [ShapeSpec(channels=64)] * 3
model.head.conv_dims = [64, 64]
model.anchor_generator.sizes = [[s * 3, s * 4] for s in [8, 16, 32]]
model.anchor_generator.strides = [8, 16, 32]
model.head_in_features = ["p3", "p4", "p5"]
# the synthetic demo set's class count; demo configs override it to match their dataset
model.num_classes = 50
model.test_topk_candidates = 1000
