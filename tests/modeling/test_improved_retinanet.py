"""ImprovedRetinaNet: equivalence with Detectron2's RetinaNet, its IoU targets, its inference
score and cap, bad input, and that a few CPU iterations reduce the loss."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import copy
import os

import pytest
import torch
from torch import nn

from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import ShapeSpec
from detectron2.modeling import RetinaNet
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K
from detectron2.structures import Boxes, ImageList, Instances, pairwise_iou
from detectron2.utils.events import EventStorage

from efl.losses import EqualizedFocalLoss
from efl.modeling import (
    Detectron2BoxLoss,
    EMAPositivesNormalizer,
    ImprovedRetinaNet,
    MatcherLabeler,
    MeanPositivesNormalizer,
)

NUM_CLASSES = 5
SMALL_CONFIG = os.path.join(
    os.path.dirname(__file__), "..", "..", "configs", "common", "models", "improved_retinanet_small.py"
)


def tiny_retinanet_cfg():
    """Detectron2's own RetinaNet LazyConfig, shrunk: ResNet-18, 32 channels, 2 head convs."""
    model = model_zoo.get_config("common/models/retinanet.py").model
    model.backbone.bottom_up.stages.depth = 18
    del model.backbone.bottom_up.stages.stride_in_1x1  # BasicBlock has no such option
    model.backbone.bottom_up.stages.norm = "BN"
    model.backbone.bottom_up.stem.norm = "BN"
    model.backbone.out_channels = 32
    model.backbone.top_block.in_channels = 512
    model.head.input_shape = [ShapeSpec(channels=32)] * 5
    model.head.conv_dims = [32, 32]
    # prior 0.5 so that random-init scores pass the 0.05 test threshold and NMS has work to do
    model.head.prior_prob = 0.5
    model.num_classes = NUM_CLASSES
    return model


def random_batch(num_images=2, size=(96, 128), num_boxes=4, seed=0, empty_image=False):
    g = torch.Generator().manual_seed(seed)
    batch = []
    for i in range(num_images):
        h, w = size
        inst = Instances((h, w))
        n = 0 if (empty_image and i == 0) else num_boxes
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.6
        wh = torch.rand(n, 2, generator=g) * 40 + 12
        inst.gt_boxes = Boxes(torch.cat([xy, xy + wh], 1))
        inst.gt_classes = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        image = torch.rand(3, h, w, generator=g) * 255
        batch.append({"image": image, "instances": inst, "height": h, "width": w})
    return batch


def as_improved_retinanet(cfg, **overrides):
    """Detectron2's RetinaNet LazyConfig turned into an ImprovedRetinaNet with Detectron2's steps
    as parts: its matcher, focal loss (EFL with s = 0), box loss and EMA normaliser."""
    cfg = copy.deepcopy(cfg)
    cfg._target_ = ImprovedRetinaNet
    cfg.anchor_labeler = L(MatcherLabeler)(matcher=cfg.pop("anchor_matcher"))
    cfg.cls_loss = L(EqualizedFocalLoss)(
        num_classes=NUM_CLASSES, gamma_b=cfg.pop("focal_loss_gamma"), scale_factor=0.0,
        alpha=cfg.pop("focal_loss_alpha"),
    )
    cfg.box_losses = [L(Detectron2BoxLoss)(
        box_reg_loss_type=cfg.pop("box_reg_loss_type", "smooth_l1"),
        smooth_l1_beta=cfg.pop("smooth_l1_beta", 0.0),
    )]
    cfg.iou_loss = None
    cfg.normalizer = L(EMAPositivesNormalizer)(momentum=0.9, initial=100)
    cfg.max_detections_per_image = 100  # RetinaNet's default
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def d2_and_subclass(**overrides):
    """A Detectron2 RetinaNet and an ImprovedRetinaNet built from the same config and weights."""
    cfg = tiny_retinanet_cfg()
    torch.manual_seed(0)
    reference = instantiate(cfg)
    ours = instantiate(as_improved_retinanet(cfg, **overrides))
    missing, unexpected = ours.load_state_dict(reference.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("cls_loss.") for k in missing)
    return reference, ours


def test_detectron2_parts_give_detectron2_retinanet_losses_and_detections():
    reference, ours = d2_and_subclass()
    assert type(reference) is RetinaNet and isinstance(ours, RetinaNet)
    with EventStorage():
        # two iterations, so that the EMA normaliser's state is compared as well
        for seed in (0, 1):
            batch = random_batch(seed=seed, empty_image=seed == 1)
            expected = reference(batch)
            got = ours(batch)
            assert set(got) == set(expected) == {"loss_cls", "loss_box_reg"}
            # fvcore's focal loss runs in fp32 through autograd, EFL with s = 0 in closed form
            torch.testing.assert_close(got["loss_cls"], expected["loss_cls"], rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(got["loss_box_reg"], expected["loss_box_reg"], rtol=1e-6, atol=1e-7)
    reference.eval(), ours.eval()
    batch = random_batch(seed=2)
    with torch.no_grad():
        expected, got = reference(batch), ours(batch)
    for e, o in zip(expected, got):
        e, o = e["instances"], o["instances"]
        assert len(e) > 10
        torch.testing.assert_close(o.pred_boxes.tensor, e.pred_boxes.tensor)
        torch.testing.assert_close(o.scores, e.scores)
        assert torch.equal(o.pred_classes, e.pred_classes)


def test_detectron2_giou_box_loss_part_gives_detectron2_giou_loss():
    cfg = tiny_retinanet_cfg()
    cfg.box_reg_loss_type = "giou"
    torch.manual_seed(0)
    reference = instantiate(cfg)
    ours = instantiate(as_improved_retinanet(
        cfg, box_losses=[L(Detectron2BoxLoss)(box_reg_loss_type="giou")]
    ))
    ours.load_state_dict(reference.state_dict(), strict=False)
    with EventStorage():
        batch = random_batch(seed=3)
        expected, got = reference(batch), ours(batch)
    torch.testing.assert_close(got["loss_box_reg"], expected["loss_box_reg"], rtol=1e-6, atol=1e-7)


def test_mean_positives_normaliser_is_this_iterations_positive_count():
    reference, ours = d2_and_subclass(normalizer=L(MeanPositivesNormalizer)())
    with EventStorage() as storage:
        batch = random_batch(seed=4)
        expected, got = reference(batch), ours(batch)
        num_pos = storage.history("num_pos_anchors").latest() * len(batch)
    ema = 0.9 * 100 + 0.1 * num_pos  # Detectron2's normaliser at its first iteration
    for k in expected:
        torch.testing.assert_close(got[k] * num_pos, expected[k] * ema, rtol=1e-5, atol=1e-6)


def test_yacs_config_is_refused_with_a_pointer_to_the_lazy_configs():
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "ImprovedRetinaNet"
    cfg.MODEL.DEVICE = "cpu"
    with pytest.raises(NotImplementedError, match="LazyConfig"):
        build_model(cfg)


# ----------------------------------------------------------------------------------------------
# The improved baseline, small enough for tests


def improved_model(cls_loss=None, **kwargs):
    cfg = LazyConfig.load(SMALL_CONFIG).model
    cfg.num_classes = NUM_CLASSES
    if cls_loss is not None:
        cfg.cls_loss = cls_loss
    for k, v in kwargs.items():
        setattr(cfg, k, v)
    torch.manual_seed(0)
    return instantiate(cfg)


class _RecordingLoss(nn.Module):
    """Stands in for EQFL: records what the detector passes and returns a differentiable 0."""

    def forward_with_quality(self, logits, labels, scores, normalizer):
        self.seen = (logits.detach(), labels, scores, normalizer)
        return logits.sum() * 0


def test_quality_targets_are_iou_of_detached_predicted_box_with_its_gt():
    recorder = _RecordingLoss()
    model = improved_model(cls_loss=recorder)
    batch = random_batch(seed=5)
    # Capture the head outputs to rebuild every positive anchor's predicted box independently.
    head_out = {}
    model.head.register_forward_hook(lambda m, i, o: head_out.update(out=o))
    with EventStorage():
        losses = model(batch)
    logits_seen, labels, scores, normalizer = recorder.seen
    logits_maps, delta_maps, _ = head_out["out"]

    images = model.preprocess_image(batch)
    features = model.backbone(images.tensor)
    anchors = Boxes.cat(model.anchor_generator([features[f] for f in model.head_in_features]))
    gt_labels, gt_boxes = model.label_anchors(
        model.anchor_generator([features[f] for f in model.head_in_features]),
        [b["instances"] for b in batch],
    )
    deltas = torch.cat([permute_to_N_HWA_K(d, 4) for d in delta_maps], 1)  # (N, R, 4)
    num_anchors = len(anchors)
    num_pos = 0
    for n in range(len(batch)):
        pos = (gt_labels[n] < NUM_CLASSES).nonzero().flatten()
        num_pos += len(pos)
        pred = Box2BoxTransform([1.0] * 4).apply_deltas(deltas[n, pos].detach(), anchors.tensor[pos])
        expected = pairwise_iou(Boxes(pred), Boxes(gt_boxes[n][pos])).diagonal()
        rows = n * num_anchors + pos  # no ignored anchors under ATSS
        torch.testing.assert_close(scores[rows], expected)
        assert (scores[n * num_anchors : (n + 1) * num_anchors][gt_labels[n] == NUM_CLASSES] == 0).all()
        # the loss sees the flattened logits: row (n, level, h, w, a), column c is channel a*K + c
        lvl0 = logits_maps[0]
        h, w, a, c = 3, 5, 1, 2
        row = n * num_anchors + (h * lvl0.shape[3] + w) * 2 + a
        assert logits_seen[row, c] == lvl0[n, a * NUM_CLASSES + c, h, w]
    assert num_pos > 0 and float(normalizer) == num_pos
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_iou"}


def test_inference_score_is_sigmoid_cls_times_sigmoid_iou_capped_at_300():
    model = improved_model(
        anchor_generator=DefaultAnchorGenerator(sizes=[[8]], aspect_ratios=[1.0], strides=[8], offset=0.5),
        head_in_features=["p3"],
        test_topk_candidates=1000,
    )
    model.eval()
    k = NUM_CLASSES
    g = torch.Generator().manual_seed(0)
    # one 16x16 level, A = 1: 256 non-overlapping 8-px anchors x 5 classes = 1280 candidates,
    # none suppressed by class-aware NMS, so the output is the top 300 of sigma(cls)*sigma(iou).
    cls_logits = torch.randn(1, k, 16, 16, generator=g) * 3
    iou_logits = torch.randn(1, 1, 16, 16, generator=g) * 3
    deltas = torch.zeros(1, 4, 16, 16)
    images = ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)])
    features = [torch.zeros(1, 8, 16, 16)]
    (result,) = model.forward_inference(images, features, ([cls_logits], [deltas], [iou_logits]))
    assert len(result) == 300

    # independent reference: location (h, w) <-> anchor box [8w, 8h, 8w+8, 8h+8]
    product = (cls_logits[0].sigmoid() * iou_logits[0].sigmoid()).permute(1, 2, 0)  # (H, W, K)
    top = product.flatten().topk(300).values
    torch.testing.assert_close(result.scores, top)
    boxes = result.pred_boxes.tensor
    hh, ww = (boxes[:, 1] / 8).long(), (boxes[:, 0] / 8).long()
    torch.testing.assert_close(result.scores, product[hh, ww, result.pred_classes])
    # and the ranking is not the classification ranking alone
    cls_only = cls_logits[0].sigmoid().permute(1, 2, 0).flatten().topk(300).values
    assert not torch.allclose(top, cls_only)


def test_batch_with_an_unannotated_image_and_degenerate_boxes_trains():
    model = improved_model()
    batch = random_batch(seed=6, empty_image=True)
    inst = batch[1]["instances"]
    boxes = inst.gt_boxes.tensor.clone()
    boxes[0, 2] = boxes[0, 0]  # zero width
    boxes[1] += 1000  # outside the image
    inst.gt_boxes = Boxes(boxes)
    with EventStorage():
        losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_few_cpu_iterations_of_the_small_config_reduce_the_loss():
    model = improved_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    batch = random_batch(num_images=2, size=(64, 96), seed=7)
    totals = []
    with EventStorage():
        for _ in range(8):
            losses = model(batch)
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            totals.append(total.item())
    # about 3.0 -> 1.8 with these seeds
    assert totals[-1] < 0.8 * totals[0], totals


def test_eqfl_trains_through_the_detector_and_updates_its_statistics():
    from efl.losses import EqualizedQualityFocalLoss

    model = improved_model(cls_loss=EqualizedQualityFocalLoss(NUM_CLASSES))
    batch = random_batch(seed=8)
    with EventStorage():
        losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total) and losses["loss_cls"] > 0
    total.backward()
    state = model.state_dict()
    present = torch.zeros(NUM_CLASSES, dtype=torch.bool)
    present[torch.cat([b["instances"].gt_classes for b in batch])] = True
    assert state["cls_loss.neg_grad"].gt(0).all()
    # positives only for the classes in the batch (each ground truth gets ATSS positives here)
    assert torch.equal(state["cls_loss.pos_grad"].gt(0), present)


def test_test_pad_to_pads_inference_input_at_bottom_right_and_keeps_the_image_size():
    model = improved_model(test_pad_to=(96, 128))
    model.eval()
    seen = {}
    model.backbone.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    image = torch.rand(3, 40, 50) * 255
    with torch.no_grad():
        (out,) = model([{"image": image, "height": 40, "width": 50}])
    x = seen["x"]
    assert x.shape[-2:] == (96, 128)
    # top-left holds the normalised image, the rest is zero (padding after normalisation)
    normalised = (image - model.pixel_mean) / model.pixel_std
    torch.testing.assert_close(x[0, :, :40, :50], normalised)
    assert x[0, :, 40:].abs().sum() == 0 and x[0, :, :, 50:].abs().sum() == 0
    boxes = out["instances"].pred_boxes.tensor
    assert len(boxes) and (boxes[:, 2] <= 50).all() and (boxes[:, 3] <= 40).all()
    # training is unaffected: it pads to the size divisibility only
    model.train()
    images = model.preprocess_image([{"image": image}])
    assert images.tensor.shape[-2:] != (96, 128)


def test_clipping_before_nms_drops_boxes_outside_the_image_before_the_top_k():
    # one 4x4 level of 8-px anchors, A = 1, K = 1, image 32x32; the best-scoring anchor's box is
    # moved entirely outside the image by its deltas
    anchor_generator = DefaultAnchorGenerator(sizes=[[8]], aspect_ratios=[1.0], strides=[8], offset=0.5)
    scores = torch.linspace(0.1, 0.9, 16).reshape(1, 1, 4, 4)
    logits = torch.logit(scores)
    deltas = torch.zeros(1, 4, 4, 4)
    deltas[0, 0, 3, 3] = 10.0  # dx = 10 widths: x moves by 80 px, out of the 32-px image
    images = ImageList(torch.zeros(1, 3, 32, 32), [(32, 32)])
    features = [torch.zeros(1, 8, 4, 4)]
    results = {}
    for clip in (False, True):
        model = improved_model(
            anchor_generator=anchor_generator, head_in_features=["p3"], test_topk_candidates=1,
            clip_boxes_before_nms=clip, num_classes=1,
        )
        model.eval()
        (results[clip],) = model.forward_inference(images, features, ([logits], [deltas]))
    # without clipping the top-1 candidate is the outside box (score 0.9), with it the next one
    torch.testing.assert_close(results[False].scores, torch.tensor([0.9]))
    torch.testing.assert_close(results[True].scores, scores.flatten()[14:15])
    assert (results[True].pred_boxes.tensor <= 32).all()


def test_clipping_before_nms_needs_no_score_threshold():
    with pytest.raises(ValueError, match="test_score_thresh=None"):
        improved_model(clip_boxes_before_nms=True, test_score_thresh=0.05)


def test_fpn_pads_batches_to_the_configured_size_divisibility():
    from efl.modeling import FPNWithLateralTop

    cfg = LazyConfig.load(SMALL_CONFIG).model.backbone
    assert instantiate(cfg).size_divisibility == 32  # Detectron2's: the coarsest input stride
    cfg.size_divisibility = 64
    assert instantiate(cfg).size_divisibility == 64
    cfg.size_divisibility = 48
    with pytest.raises(ValueError, match="multiple of the coarsest input stride 32"):
        instantiate(cfg)
    assert FPNWithLateralTop is type(instantiate(LazyConfig.load(SMALL_CONFIG).model.backbone))


@pytest.mark.parametrize("config", ["configs/efl_improved_baseline_r50_2x_rfs.py",
                                    "configs/efl_oids_r50_2x_random.py"])
def test_improved_baseline_configs_train_the_reference_parameter_set(config):
    # The reference (EOD freeze_bn: nn.BatchNorm2d in eval mode) trains the affine weight and
    # bias of the frozen BN in res3-res5: 13 + 19 + 10 BNs x 2 = 84 tensors in R50 (stem and
    # res2 frozen); its tower convs have no bias.
    from detectron2.config import LazyConfig, instantiate

    model = instantiate(LazyConfig.load(config).model)
    trainable_norms = [n for n, p in model.backbone.bottom_up.named_parameters()
                       if p.requires_grad and ".norm." in n]
    assert len(trainable_norms) == 84
    assert all(n.startswith(("res3", "res4", "res5")) for n in trainable_norms)
    frozen = [n for n, p in model.backbone.bottom_up.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("stem", "res2")) for n in frozen)
    for tower in (model.head.cls_subnet, model.head.bbox_subnet):
        convs = [m for m in tower if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == 4 and all(c.bias is None for c in convs)
    # the running statistics stay fixed in training
    model.train()
    bn = model.backbone.bottom_up.res3[0].conv1.norm
    before = bn.running_mean.clone()
    x = torch.randn(2, 256, 16, 16)
    model.backbone.bottom_up.res3[0].conv1(x).sum().backward()
    assert torch.equal(bn.running_mean, before) and bn.weight.grad is not None
