"""YOLOX-IP through ImprovedRetinaNet (configs/common/models/yolox_ip.py): anchors, preprocessing,
one CPU training step with EFL and with EQFL, inference."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

from pathlib import Path

import pytest
import torch

from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from efl.losses import EqualizedQualityFocalLoss

CONFIG = Path(__file__).parents[3] / "configs" / "common" / "models" / "yolox_ip.py"
NUM_CLASSES = 8


def tiny_yolox_ip(**overrides):
    """YOLOX-IP at depth 0.33, width 0.125 (16-channel stem), 8 classes."""
    cfg = LazyConfig.load(str(CONFIG)).model
    cfg.backbone.bottom_up.width = 0.125
    cfg.num_classes = NUM_CLASSES
    cfg.test_pad_to = (96, 96)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    torch.manual_seed(0)
    return instantiate(cfg)


def random_batch(num_images=2, size=(64, 64), num_boxes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = []
    h, w = size
    for _ in range(num_images):
        inst = Instances((h, w))
        xy = torch.rand(num_boxes, 2, generator=g) * torch.tensor([w, h]) * 0.5
        wh = torch.rand(num_boxes, 2, generator=g) * 20 + 10
        inst.gt_boxes = Boxes(torch.cat([xy, (xy + wh).clamp(max=min(h, w))], 1))
        inst.gt_classes = torch.randint(0, NUM_CLASSES, (num_boxes,), generator=g)
        image = torch.randint(0, 256, (3, h, w), generator=g).float()  # BGR, 0-255
        batch.append({"image": image, "instances": inst, "height": h, "width": w})
    return batch


def test_anchors_are_stride_times_3_and_4_centred_on_cell_corners():
    model = tiny_yolox_ip()
    # one row of two cells per level: (y=0, x=0) and (y=0, x=1)
    anchors = model.anchor_generator([torch.zeros(1, 1, 1, 2)] * 3)
    assert model.anchor_generator.num_cell_anchors == [2, 2, 2]
    for level, stride in enumerate([8, 16, 32]):
        boxes = anchors[level].tensor.view(2, 2, 4)  # (cell, anchor, 4)
        for cell, (cx, cy) in enumerate([(0, 0), (stride, 0)]):
            # anchor 0 of side 3 * stride, anchor 1 of side 4 * stride, centred on the corner
            for a, side in enumerate([3 * stride, 4 * stride]):
                half = side / 2
                expected = torch.tensor([cx - half, cy - half, cx + half, cy + half])
                torch.testing.assert_close(boxes[cell, a], expected)


def test_images_enter_the_backbone_as_raw_bgr_pixels_padded_to_32():
    model = tiny_yolox_ip()
    batch = random_batch(num_images=1, size=(50, 70))
    images = model.preprocess_image(batch)
    assert images.tensor.shape[-2:] == (64, 96)
    torch.testing.assert_close(images.tensor[0, :, :50, :70], batch[0]["image"])
    assert images.tensor[0, :, 50:, :].abs().sum() == 0
    assert images.tensor[0, :, :, 70:].abs().sum() == 0


@pytest.mark.parametrize("loss", ["efl", "eqfl"])
def test_one_cpu_training_step_gives_finite_cls_giou_l1_and_iou_losses(loss):
    overrides = {}
    if loss == "eqfl":
        overrides["cls_loss"] = L(EqualizedQualityFocalLoss)(
            num_classes=NUM_CLASSES, gamma_b=2.0, scale_factor=4.0
        )
    model = tiny_yolox_ip(**overrides)
    model.train()
    with EventStorage():
        losses = model(random_batch())
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_l1", "loss_iou"}
    for name, value in losses.items():
        assert torch.isfinite(value) and value > 0, (name, value)
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(grads) == sum(1 for _ in model.parameters())  # every weight is trained
    assert all(torch.isfinite(g).all() for g in grads)
    # the classification statistics moved (EFL's first step is focal loss, then g_j changes)
    assert model.cls_loss.neg_grad.sum() > 0


def test_inference_returns_at_most_300_boxes_per_image_in_input_coordinates():
    model = tiny_yolox_ip()
    model.eval()
    batch = random_batch(num_images=2, size=(64, 80))
    for item in batch:
        del item["instances"]
    with torch.no_grad():
        outputs = model(batch)
    assert len(outputs) == 2
    for out in outputs:
        inst = out["instances"]
        assert 0 < len(inst) <= 300
        assert inst.image_size == (64, 80)
        assert (inst.scores > 0).all() and (inst.scores <= 1).all()
        assert (inst.pred_classes >= 0).all() and (inst.pred_classes < NUM_CLASSES).all()
