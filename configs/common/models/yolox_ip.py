# YOLOX-IP (docs/yolox_ip.md): CSPDarknet + YOLOX PAFPN (P3-P5), the decoupled per-level head with
# its objectness output as the IoU branch, 2 anchors per location, ATSS top 18, IoU-weighted GIoU +
# L1 on the deltas, EFL (gamma_b 2, s 4, alpha 0.25). Size S; the two multipliers are the knobs:
#   M: model.backbone.bottom_up.depth=0.67 model.backbone.bottom_up.width=0.75
#   L: model.backbone.bottom_up.depth=1.0  model.backbone.bottom_up.width=1.0
#   X: model.backbone.bottom_up.depth=1.33 model.backbone.bottom_up.width=1.25
# (the neck and head read them by interpolation).
from detectron2.config import LazyCall as L
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.box_regression import Box2BoxTransform

from efl.losses import EqualizedFocalLoss
from efl.modeling import (
    AnchorDeltaL1Loss,
    ATSSAssigner,
    ImprovedRetinaNet,
    IoUBranchLoss,
    IoUWeightedGIoULoss,
    MeanPositivesNormalizer,
)
from efl.modeling.yolox import CSPDarknet, YOLOXDecoupledHead, YOLOXPAFPN

model = L(ImprovedRetinaNet)(
    backbone=L(YOLOXPAFPN)(
        bottom_up=L(CSPDarknet)(depth=0.33, width=0.50, out_features=["dark3", "dark4", "dark5"]),
        depth="${.bottom_up.depth}",
        in_features=["dark3", "dark4", "dark5"],
    ),
    head=L(YOLOXDecoupledHead)(
        num_classes="${..num_classes}",
        num_anchors=2,
        width="${..backbone.bottom_up.width}",
        prior_prob=0.001,
    ),
    head_in_features=["p3", "p4", "p5"],
    anchor_generator=L(DefaultAnchorGenerator)(
        # side = stride x {3, 4}; anchor 0 is the smaller one.
        sizes=[[s * 3, s * 4] for s in [8, 16, 32]],
        aspect_ratios=[1.0],
        strides=[8, 16, 32],
        # anchors centred on the cell's top-left corner, the reference's aligned convention
        offset=0.0,
    ),
    box2box_transform=L(Box2BoxTransform)(weights=[1.0, 1.0, 1.0, 1.0]),
    anchor_labeler=L(ATSSAssigner)(topk=18, min_box_size=1.0),
    cls_loss=L(EqualizedFocalLoss)(
        num_classes="${..num_classes}", gamma_b=2.0, scale_factor=4.0, alpha=0.25
    ),
    # L1 on the encoded deltas: mean over the local positives x 4, no normaliser
    box_losses=[L(IoUWeightedGIoULoss)(), L(AnchorDeltaL1Loss)()],
    iou_loss=L(IoUBranchLoss)(),
    normalizer=L(MeanPositivesNormalizer)(),
    num_classes=1203,
    test_score_thresh=None,
    test_topk_candidates=1000,
    test_nms_thresh=0.65,
    max_detections_per_image=300,
    # the reference tests on a 640 x 640 canvas, image at the top-left
    test_pad_to=(640, 640),
    # as the reference: boxes clipped to the image and empty ones dropped before top-k and NMS
    clip_boxes_before_nms=True,
    # None: Detectron2's inference; "yolox_ip": the reference's rules, to evaluate its converted
    # released models exactly (with dataloader.test.mapper.opencv_resize=True;
    # docs/eod_checkpoints.md)
    eod_inference=None,
    # BGR, 0-255, no normalisation (trained from scratch)
    pixel_mean=[0.0, 0.0, 0.0],
    pixel_std=[1.0, 1.0, 1.0],
    input_format="BGR",
)
