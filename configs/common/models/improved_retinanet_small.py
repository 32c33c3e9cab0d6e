# A tiny improved baseline for the CPU demo (160-px images, from scratch): a narrow ResNet-18-style
# backbone (Detectron2's ResNet and BasicBlock, one block per stage, widths 16-128, 3x3 stem, BN),
# a 32-channel FPN P3-P5, GN head towers of 2 x 32 channels, anchors stride x {3, 4}.
# Same assigner, losses and inference as the full model (improved_retinanet.py).
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import ResNet
from detectron2.modeling.backbone.resnet import BasicBlock

from efl.modeling import SmallStem

from .improved_retinanet import model

_stem_width = 16
_widths = [16, 32, 64, 128]  # res2..res5
_strides = [1, 2, 2, 2]

model.backbone.bottom_up = L(ResNet)(
    stem=L(SmallStem)(in_channels=3, out_channels=_stem_width, norm="BN"),
    stages=[
        L(ResNet.make_stage)(
            block_class=BasicBlock,
            num_blocks=1,
            in_channels=in_channels,
            out_channels=out_channels,
            stride_per_block=[stride],
            norm="BN",
        )
        for in_channels, out_channels, stride in zip(
            [_stem_width] + _widths[:-1], _widths, _strides
        )
    ],
    out_features=["res3", "res4", "res5"],
    # trained from scratch: nothing frozen
    freeze_at=0,
)
model.backbone.out_channels = 32
model.backbone.top_block = None
# 160-px images: pad to the coarsest stride (32) only, not to the reference's 64
model.backbone.size_divisibility = None
model.head.input_shape = [ShapeSpec(channels=32)] * 3
model.head.conv_dims = [32, 32]
model.anchor_generator.sizes = [[s * 3, s * 4] for s in [8, 16, 32]]
model.anchor_generator.strides = [8, 16, 32]
model.head_in_features = ["p3", "p4", "p5"]
# the synthetic demo set's class count (48); configs of other sets override it
model.num_classes = 48
model.test_topk_candidates = 1000
