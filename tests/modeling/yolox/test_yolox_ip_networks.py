"""YOLOX-IP-S/M backbone, neck and head against the reference: output shapes and strides,
parameter counts, state_dict keys (prefix map only), head initialisation and channel layout."""
import efl  # noqa: F401  (compatibility fixes before detectron2)

import math
from pathlib import Path

import pytest
import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.modeling.meta_arch.dense_detector import permute_to_N_HWA_K

from efl.modeling.yolox import CSPDarknet, YOLOXDecoupledHead, YOLOXPAFPN

CONFIG = Path(__file__).parents[3] / "configs" / "common" / "models" / "yolox_ip.py"

SIZES = {"s": (0.33, 0.50), "m": (0.67, 0.75)}

# The reference's parameter counts with 1203 classes and 2 anchors per location (backbone, neck,
# head), counted on the reference's own modules (ModelTC/EOD cspdarknet.py, pafpn.py,
# yolox_head.py). As a cross-check, YOLOX-S's head differs from Megvii's 80-class YOLOX-S only in
# the three 1x1 prediction convs.
REFERENCE_PARAMS = {
    "s": (4_212_672, 2_834_688, 2_822_992),
    "m": (12_352_992, 8_679_168, 5_643_984),
}


def yolox_ip_config(size="s"):
    """The YOLOX-IP model piece (configs/common/models/yolox_ip.py) at size S or M."""
    cfg = LazyConfig.load(str(CONFIG)).model
    cfg.backbone.bottom_up.depth, cfg.backbone.bottom_up.width = SIZES[size]
    return cfg


def _count(module):
    return sum(p.numel() for p in module.parameters())


# ours -> reference; the first matching prefix wins (docs/yolox_ip.md, "Checkpoint keys")
_PREFIX_MAP = [
    ("backbone.bottom_up.", "backbone."),
    ("backbone.", "neck."),
    ("head.", "roi_head."),
    ("cls_loss.", "post_process.cls_loss."),
]


def _to_reference_key(key):
    for ours, theirs in _PREFIX_MAP:
        if key.startswith(ours):
            return theirs + key[len(ours) :]
    raise AssertionError(f"no prefix rule for {key}")


def _reference_keys(size):
    """(key, shape) of the reference's state_dict, read from its module definitions."""
    path = Path(__file__).with_name(f"eod_yolox_ip_{size}_keys.txt")
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape = line.split("\t")
        rows.append((key, () if shape == "-" else tuple(int(d) for d in shape.split("x"))))
    return rows


@pytest.mark.parametrize("size", ["s", "m"])
def test_backbone_outputs_p3_p4_p5_at_strides_8_16_32(size):
    depth, width = SIZES[size]
    torch.manual_seed(0)
    backbone = YOLOXPAFPN(bottom_up=CSPDarknet(depth=depth, width=width), depth=depth).eval()
    channels = [int(256 * width), int(512 * width), int(1024 * width)]  # 128/256/512 for S
    h, w = 64, 96
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, h, w))
        dark = backbone.bottom_up(torch.randn(1, 3, h, w))
    assert list(out) == ["p3", "p4", "p5"]
    assert backbone.size_divisibility == 32
    for (name, feature), c, stride in zip(out.items(), channels, [8, 16, 32]):
        assert feature.shape == (1, c, h // stride, w // stride)
        shape = backbone.output_shape()[name]
        assert (shape.channels, shape.stride) == (c, stride)
    for (name, feature), c, stride in zip(dark.items(), channels, [8, 16, 32]):
        assert name == f"dark{int(math.log2(stride))}"
        assert feature.shape == (1, c, h // stride, w // stride)


@pytest.mark.parametrize("size", ["s", "m"])
def test_parameter_counts_equal_the_reference(size):
    model = instantiate(yolox_ip_config(size))
    backbone = _count(model.backbone.bottom_up)
    neck = _count(model.backbone) - backbone
    head = _count(model.head)
    assert (backbone, neck, head) == REFERENCE_PARAMS[size]
    # the same total, from the reference's key list
    total = sum(
        math.prod(shape)
        for key, shape in _reference_keys(size)
        if not key.startswith("post_process.")
        and "running_" not in key
        and "num_batches" not in key
    )
    assert total == sum(REFERENCE_PARAMS[size])


def test_megvii_yolox_s_parameter_count_with_its_own_head_outputs():
    # Megvii's YOLOX-S (80 classes, 1 prediction per location, objectness): 8,968,255 parameters
    # (thop report 8.97M). Backbone and neck are the same shapes; only the 1x1 outputs differ.
    backbone = instantiate(yolox_ip_config("s").backbone)
    head = YOLOXDecoupledHead(num_classes=80, num_anchors=1, width=0.5)
    assert _count(backbone) + _count(head) == 8_968_255


@pytest.mark.parametrize("size", ["s", "m"])
def test_state_dict_keys_map_one_to_one_onto_the_references_by_prefix(size):
    # the whole detector of the config: anchors and pixel statistics are not saved, the EFL
    # statistics are
    state = instantiate(yolox_ip_config(size)).state_dict()
    reference = _reference_keys(size)
    assert len(state) == len(reference) == {"s": 465, "m": 609}[size]
    mapped = [(_to_reference_key(k), tuple(v.shape)) for k, v in state.items()]
    # same keys, same shapes, same order
    assert mapped == reference


def test_class_and_iou_biases_start_at_the_prior_and_box_biases_do_not():
    head = YOLOXDecoupledHead(num_classes=7, num_anchors=2, width=0.125)
    prior_bias = -math.log((1 - 0.001) / 0.001)  # -6.9068
    assert prior_bias == pytest.approx(-6.9068, abs=1e-4)
    for level in range(3):
        torch.testing.assert_close(head.cls_preds[level].bias, torch.full((14,), prior_bias))
        torch.testing.assert_close(head.obj_preds[level].bias, torch.full((2,), prior_bias))
        assert (head.reg_preds[level].bias.abs() < 1).all()


def test_head_outputs_are_anchor_major_and_iou_reads_the_box_branch():
    torch.manual_seed(0)
    num_classes, num_anchors = 5, 2
    head = YOLOXDecoupledHead(num_classes=num_classes, num_anchors=num_anchors, width=0.125).eval()
    features = [torch.randn(2, c, s, s) for c, s in [(32, 4), (64, 2), (128, 1)]]
    with torch.no_grad():
        logits, deltas, ious = head(features)
    for level, (s, x) in enumerate(zip([4, 2, 1], features)):
        assert logits[level].shape == (2, num_anchors * num_classes, s, s)
        assert deltas[level].shape == (2, num_anchors * 4, s, s)
        assert ious[level].shape == (2, num_anchors, s, s)

    # Perturb output channel a*C + c of the class conv (level 0): after Detectron2's
    # permute_to_N_HWA_K, exactly the column c of anchor a's rows must change.
    a, c = 1, 3
    base = permute_to_N_HWA_K(logits[0], num_classes).reshape(2, 4 * 4, num_anchors, num_classes)
    with torch.no_grad():
        head.cls_preds[0].bias[a * num_classes + c] += 1.0
        moved = permute_to_N_HWA_K(head(features)[0][0], num_classes)
    moved = moved.reshape(2, 16, num_anchors, num_classes)
    changed = (moved - base).abs() > 1e-6
    expected = torch.zeros_like(changed)
    expected[:, :, a, c] = True
    assert torch.equal(changed, expected)

    # the IoU output depends on the box branch only
    with torch.no_grad():
        head.cls_convs[0][1].conv.weight.add_(1.0)
        after_cls = head(features)
        head.reg_convs[0][1].conv.weight.add_(1.0)
        after_reg = head(features)
    torch.testing.assert_close(after_cls[2][0], ious[0])
    assert not torch.allclose(after_reg[2][0], ious[0])


def test_bad_inputs_are_rejected_with_the_field_named():
    with pytest.raises(ValueError, match="out_features"):
        CSPDarknet(depth=0.33, width=0.5, out_features=["res5"])
    with pytest.raises(ValueError, match="in_features"):
        YOLOXPAFPN(
            bottom_up=CSPDarknet(depth=0.33, width=0.125),
            depth=0.33,
            in_features=["dark3", "dark4", "p9"],
        )
    head = YOLOXDecoupledHead(num_classes=3, num_anchors=2, width=0.125)
    with pytest.raises(ValueError, match="levels"):
        head([torch.randn(1, 32, 4, 4)])
