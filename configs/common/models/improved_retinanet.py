# The EFL "improved baseline" (docs/improved_baseline.md): ResNet-50 FPN P3-P7, GN towers with an IoU branch,
# 2 anchors per location, ATSS, IoU-weighted GIoU, EFL (gamma_b 2, s 8, alpha 0.25).
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.backbone import BasicStem, ResNet
from detectron2.modeling.box_regression import Box2BoxTransform

from efl.losses import EqualizedFocalLoss
from efl.modeling import (
    ATSSAssigner,
    FPNWithLateralTop,
    ImprovedRetinaNet,
    IoUBranchLoss,
    IoUWeightedGIoULoss,
    LastLevelP6P7FromLateral,
    MeanPositivesNormalizer,
    RetinaNetHeadWithIoU,
)

model = L(ImprovedRetinaNet)(
    backbone=L(FPNWithLateralTop)(
        bottom_up=L(ResNet)(
            stem=L(BasicStem)(in_channels=3, out_channels=64, norm="FrozenBN"),
            stages=L(ResNet.make_default_stages)(
                depth=50,
                # torchvision layout: stride on the 3x3 conv.
                stride_in_1x1=False,
                norm="FrozenBN",
            ),
            out_features=["res3", "res4", "res5"],
            # stem and res2 frozen
            freeze_at=2,
        ),
        in_features=["res3", "res4", "res5"],
        out_channels=256,
        top_block=L(LastLevelP6P7FromLateral)(
            in_channels="${..out_channels}", out_channels="${..out_channels}", num_levels=2
        ),
        # the reference pads batches to 64 (Detectron2: 32); it moves detections near the borders
        size_divisibility=64,
    ),
    head=L(RetinaNetHeadWithIoU)(
        input_shape=[ShapeSpec(channels=256)] * 5,
        num_classes="${..num_classes}",
        num_anchors=2,
        conv_dims=[256, 256, 256, 256],
        num_groups=32,
        prior_prob=0.001,
    ),
    anchor_generator=L(DefaultAnchorGenerator)(
        # side = stride x {6, 8}; anchor 0 is the smaller one.
        sizes=[[s * 6, s * 8] for s in [8, 16, 32, 64, 128]],
        aspect_ratios=[1.0],
        strides=[8, 16, 32, 64, 128],
        # cell-centred anchors, as the reference's legacy generator
        offset=0.5,
    ),
    box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
    anchor_labeler=L(ATSSAssigner)(topk=18, min_box_size=1.0),
    cls_loss=L(EqualizedFocalLoss)(
        num_classes="${..num_classes}", gamma_b=2.0, scale_factor=8.0, alpha=0.25
    ),
    box_losses=[L(IoUWeightedGIoULoss)()],
    iou_loss=L(IoUBranchLoss)(),
    # per iteration: max(all-reduced #positives, 1) / world size (and the same for the IoU sum)
    normalizer=L(MeanPositivesNormalizer)(),
    num_classes=1203,
    head_in_features=["p3", "p4", "p5", "p6", "p7"],
    test_score_thresh=None,
    test_topk_candidates=6000,
    test_nms_thresh=0.5,
    # as the reference: boxes clipped to the image and empty ones dropped before top-k and NMS
    clip_boxes_before_nms=True,
    # None: Detectron2's inference; "improved_baseline": the reference's rules, to evaluate its
    # converted released models exactly (with dataloader.test.mapper.opencv_resize=True;
    # docs/eod_checkpoints.md)
    eod_inference=None,
    max_detections_per_image=300,
    # RGB, ImageNet mean/std on 0-255 pixels (torchvision-pretrained ResNet).
    pixel_mean=[123.675, 116.28, 103.53],
    pixel_std=[58.395, 57.12, 57.375],
    input_format="RGB",
)
