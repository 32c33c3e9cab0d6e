#!/usr/bin/env python
"""How many detections of a converted reference model each of the reference's inference rules
changes, measured on random ("synthetic") weights.

The converted networks compute the reference's raw outputs exactly (tests/tools); what moves the
detections is the post-processing. ``model.eod_inference`` applies the reference's rules
(efl.modeling.eod_inference, docs/eod_checkpoints.md); the script runs Detectron2's inference and
the same model with each rule of the family's preset alone, then with the whole preset, and
counts the detections (of at most 300 per image) that have no counterpart (same class,
IoU >= 0.95) in the other output. The pictures are --picture-scale times the network input, so
that the write-back to the picture counts too.

    python tools/eod_inference_differences.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py
    python tools/eod_inference_differences.py --config-file configs/efl_yolox_ip_s_300e_rfs.py \\
        --sizes 640x480 480x640

Random weights: convs N(0, 1/fan_in), norms near identity, tower conv biases 0 (as converted),
classification bias log(0.01/0.99) + noise, and the prediction convs scaled so that class / IoU
logits spread with std 1 and box deltas with std 0.3, as a trained detector's do. Images:
low-frequency random pictures of the given sizes (the network input). Random weights are not a
trained model: the numbers say which rules matter, not by how much AP moves. (The test resize,
``dataloader.test.mapper.opencv_resize``, is not part of this count: the input is given.)
"""
import argparse
import json
import math

import efl  # noqa: F401  (compatibility fixes; must precede detectron2)

import torch
import torch.nn.functional as F
from detectron2.config import LazyConfig, instantiate
from detectron2.structures import pairwise_iou

from efl.modeling.eod_inference import PRESETS, EODInferenceRules

FAMILY_PRESET = {"RetinaNetHeadWithIoU": "improved_baseline", "YOLOXDecoupledHead": "yolox_ip"}


@torch.no_grad()
def randomize(model, seed):
    """Random weights at the scales of the module docstring (the EFL statistics are untouched)."""
    g = torch.Generator().manual_seed(seed)
    for name, t in model.state_dict().items():
        if not t.is_floating_point() or name.startswith("cls_loss."):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if t.dim() == 4:
            value = torch.randn(t.shape, generator=g) / math.sqrt(t[0].numel())
        elif leaf in ("running_var", "weight"):
            value = 0.5 + torch.rand(t.shape, generator=g)
        else:
            value = 0.1 * torch.randn(t.shape, generator=g)
        t.copy_(value)
    for tower in ("cls_subnet", "bbox_subnet"):  # converted reference towers: conv biases are 0
        for module in getattr(model.head, tower, []):
            if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
                module.bias.zero_()
    # classification biases (A * C of them per conv): a low prior with noise
    for name, p in model.head.named_parameters():
        if name.endswith("bias") and p.numel() == model.head_num_anchors * model.num_classes:
            p.copy_(math.log(0.01 / 0.99) + 0.5 * torch.randn(p.shape, generator=g).to(p.device))


# Output spread of a trained dense detector's prediction convs (before their bias): class and
# IoU logits about 1, box deltas about 0.3. Random convs give any scale; this sets it.
OUTPUT_STD = {"cls": 1.0, "box": 0.3, "iou": 1.0}


@torch.no_grad()
def calibrate(model, image):
    """Scale each prediction conv's weight so that its output (less the bias) has OUTPUT_STD over
    the levels of ``image``; without it a deep random network gives degenerate scores and boxes."""
    a, c = model.head_num_anchors, model.num_classes
    kinds = {a * c: "cls", a * 4: "box", a: "iou"}
    convs = {m: kinds[m.out_channels] for m in model.head.modules()
             if isinstance(m, torch.nn.Conv2d) and m.out_channels in kinds}
    sums = {m: [0.0, 0] for m in convs}

    def record(module, inputs, output):
        centred = output - (module.bias.view(1, -1, 1, 1) if module.bias is not None else 0)
        sums[module][0] += float(centred.pow(2).sum())
        sums[module][1] += centred.numel()

    hooks = [m.register_forward_hook(record) for m in convs]
    try:
        raw_outputs(model, image)
    finally:
        for h in hooks:
            h.remove()
    for m, kind in convs.items():
        std = math.sqrt(sums[m][0] / max(sums[m][1], 1))
        m.weight.mul_(OUTPUT_STD[kind] / max(std, 1e-12))


def smooth_image(height, width, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(height // 32, 2), max(width // 32, 2), generator=g) * 255
    return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)[0]


def raw_outputs(model, image):
    """Per-level head outputs of ``image`` (the model's own preprocessing)."""
    images = model.preprocess_image([{"image": image}])
    features = model.backbone(images.tensor)
    return model.head([features[f] for f in model.head_in_features])


def detections(model, image, picture_size, spec):
    """The model's detections on a picture of ``picture_size`` whose network input is ``image``,
    with the reference's rules ``spec`` (None: Detectron2's inference)."""
    model.eod_rules = EODInferenceRules.parse(spec)
    (out,) = model([{"image": image, "height": picture_size[0], "width": picture_size[1]}])
    return out["instances"]


def unmatched(a, b, iou_thresh=0.95):
    """Detections of ``a`` with no detection of ``b`` of the same class at IoU >= iou_thresh."""
    if len(a) == 0:
        return 0
    if len(b) == 0:
        return len(a)
    iou = pairwise_iou(a.pred_boxes, b.pred_boxes)
    iou[a.pred_classes[:, None] != b.pred_classes[None, :]] = 0
    return int((iou.max(dim=1).values < iou_thresh).sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default="configs/efl_improved_baseline_r50_2x_rfs.py")
    parser.add_argument("--sizes", nargs="+", default=["800x1067", "800x1201", "800x1333"],
                        help="network inputs as HxW (already resized)")
    parser.add_argument("--picture-scale", type=float, default=1.25,
                        help="picture size / network input size")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--json", help="also write the numbers here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model).eval().to(args.device)
    model.head_num_anchors = model.anchor_generator.num_cell_anchors[0]
    preset = FAMILY_PRESET[type(model.head).__name__]
    variants = {rule: rule for rule in PRESETS[preset]}
    variants[f"all ({preset})"] = preset
    rows = []
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    for seed in args.seeds:
        randomize(model, seed)
        calibrate(model, smooth_image(*sizes[0], seed=seed * 1000 + 999))
        for i, (size, (height, width)) in enumerate(zip(args.sizes, sizes)):
            image = smooth_image(height, width, seed * 1000 + i)
            picture = (round(height * args.picture_scale), round(width * args.picture_scale))
            with torch.no_grad():
                ours = detections(model, image, picture, None)
                changed = {name: unmatched(ours, detections(model, image, picture, spec))
                           for name, spec in variants.items()}
            row = {"seed": seed, "size": size, "detections": len(ours), **changed}
            rows.append(row)
            print(json.dumps(row), flush=True)
    total = sum(r["detections"] for r in rows)
    print(f"\n{args.config_file}: detections of Detectron2's inference without a counterpart "
          f"(same class, IoU >= 0.95) under each reference rule, {len(rows)} images, {total} detections")
    print("| rule | changed | of all |")
    print("|---|---|---|")
    summary = {}
    for name in variants:
        count = sum(r[name] for r in rows)
        summary[name] = count / max(total, 1)
        print(f"| {name} | {count} | {100 * summary[name]:.1f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "fraction_changed": summary}, f, indent=1)


if __name__ == "__main__":
    main()
