#!/usr/bin/env python
"""How many detections of a converted reference model change under the reference's inference
rules instead of this project's (Detectron2's), measured on random ("synthetic") weights.

The converted networks compute the reference's raw outputs exactly (tests/tools); what can still
move a released model's AP is the post-processing. For each rule, the script runs the model's own
inference and the same inference with that one rule replaced by the reference's, and counts the
detections (of at most 300 per image) that have no counterpart (same class, IoU >= 0.95) in the
other output:

  pad64           batch padded to a multiple of 64 (the reference) instead of the backbone's
                  size divisibility; changes the features near the bottom/right border
  topk_cap        per level, keep min(topk, anchors at the level) (anchor, class) pairs (the
                  reference's cap counts anchors) instead of topk pairs
  clip_first      clip boxes to the image and drop empty ones before the per-level top-k and NMS
                  (the reference) instead of after NMS (Detectron2's detector_postprocess)
  legacy_plus_one anchors, decoding, clipping and NMS in the legacy "+1" pixel convention, the
                  boxes read back as [x1, y1, x2 + 1, y2 + 1]
  reference       all of the above together

    python tools/eod_inference_differences.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py
    python tools/eod_inference_differences.py --config-file configs/efl_yolox_ip_s_300e_rfs.py \\
        --sizes 640x480 480x640 --pad 0

Random weights: convs N(0, 1/fan_in), norms near identity, tower conv biases 0 (as converted),
classification bias log(0.01/0.99) + noise, and the prediction convs scaled so that class / IoU
logits spread with std 1 and box deltas with std 0.3, as a trained detector's do. Images:
low-frequency random pictures of the given sizes (already at the test resolution). Random weights
are not a trained model: the numbers say which rules matter, not by how much AP moves.
"""
import argparse
import json
import math

import efl  # noqa: F401  (compatibility fixes; must precede detectron2)

import torch
import torch.nn.functional as F
from detectron2.config import LazyConfig, instantiate
from detectron2.layers import batched_nms
from detectron2.structures import Boxes, ImageList, Instances, pairwise_iou

VARIANTS = ("pad64", "topk_cap", "clip_first", "legacy_plus_one", "reference")


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
        raw_outputs(model, image, 0)
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


def raw_outputs(model, image, pad):
    """``(image size, anchors, scores, deltas)``, the last three per-level lists of (HWA, ...)
    tensors (scores = sigmoid(class) x sigmoid(IoU)), with the batch padded to a multiple of
    ``pad`` (0: the model's own preprocessing)."""
    images = model.preprocess_image([{"image": image}])
    if pad:
        normalized = (image.to(model.pixel_mean.device) - model.pixel_mean) / model.pixel_std
        images = ImageList.from_tensors([normalized], size_divisibility=pad)
    features = model.backbone(images.tensor)
    features = [features[f] for f in model.head_in_features]
    predictions = model.head(features)
    logits, deltas, ious = model._split_predictions(predictions)
    scores = [x[0].sigmoid() for x in logits]
    if ious is not None:
        scores = [s * iou[0, :, None].sigmoid() for s, iou in zip(scores, ious)]
    anchors = model.anchor_generator(features)
    return images.image_sizes[0], anchors, scores, [d[0] for d in deltas]


def legacy_decode(deltas, anchors, clamp=math.log(1000.0 / 16)):
    """The reference's +1 decoding of (dx, dy, dw, dh) on legacy anchors (x2 inclusive)."""
    widths = anchors[:, 2] - anchors[:, 0] + 1
    heights = anchors[:, 3] - anchors[:, 1] + 1
    ctr_x, ctr_y = anchors[:, 0] + 0.5 * widths, anchors[:, 1] + 0.5 * heights
    dx, dy, dw, dh = deltas.unbind(1)
    dw, dh = dw.clamp(max=clamp), dh.clamp(max=clamp)
    px, py = dx * widths + ctr_x, dy * heights + ctr_y
    pw, ph = torch.exp(dw) * widths, torch.exp(dh) * heights
    return torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw - 1, py + 0.5 * ph - 1], dim=1)


def select_level(model, anchors, scores, deltas, image_size, *, cap_by_anchors, clip_first, legacy):
    """One level's candidates: Detectron2's rule (top-k pairs, then decode) or the reference's
    (decode all, clip, drop empty, then the top min(k, anchors kept) pairs)."""
    height, width = image_size
    k = model.test_topk_candidates
    anchor_boxes = anchors.tensor
    if legacy:  # the same anchors in the inclusive convention: x2 - 1, y2 - 1
        anchor_boxes = anchor_boxes - anchor_boxes.new_tensor([0, 0, 1, 1])
    keep_anchor = torch.ones(len(anchor_boxes), dtype=torch.bool, device=anchor_boxes.device)
    boxes_all = None
    if clip_first:
        boxes_all = legacy_decode(deltas, anchor_boxes) if legacy else \
            model.box2box_transform.apply_deltas(deltas, anchor_boxes)
        off = 1 if legacy else 0
        boxes_all[:, 0::2] = boxes_all[:, 0::2].clamp(0, width - off)
        boxes_all[:, 1::2] = boxes_all[:, 1::2].clamp(0, height - off)
        keep_anchor = ((boxes_all[:, 2] - boxes_all[:, 0] + off) > 0) & ((boxes_all[:, 3] - boxes_all[:, 1] + off) > 0)
    idx = keep_anchor.nonzero()[:, 0]
    flat = scores[idx].flatten()
    num = min(k, int(idx.numel())) if cap_by_anchors else k
    top_scores, flat_idx = flat.topk(min(num, flat.numel()))
    anchor_idx = idx[flat_idx // scores.shape[1]]
    classes = flat_idx % scores.shape[1]
    if boxes_all is not None:
        boxes = boxes_all[anchor_idx]
    elif legacy:
        boxes = legacy_decode(deltas[anchor_idx], anchor_boxes[anchor_idx])
    else:
        boxes = model.box2box_transform.apply_deltas(deltas[anchor_idx], anchor_boxes[anchor_idx])
    if legacy:  # read the inclusive boxes back as continuous ones
        boxes = boxes + boxes.new_tensor([0, 0, 1, 1])
    return Instances(image_size, pred_boxes=Boxes(boxes), scores=top_scores, pred_classes=classes)


def detections(model, outputs, **rules):
    image_size, anchors, scores, deltas = outputs
    levels = [select_level(model, a, s, d, image_size, **rules) for a, s, d in zip(anchors, scores, deltas)]
    pred = Instances.cat(levels)
    # With +1 boxes read back as [x1, y1, x2 + 1, y2 + 1], the legacy IoU equals the ordinary one.
    keep = batched_nms(pred.pred_boxes.tensor, pred.scores, pred.pred_classes, model.test_nms_thresh)
    pred = pred[keep[: model.max_detections_per_image]]
    pred.pred_boxes.clip(image_size)  # Detectron2's detector_postprocess
    return pred[pred.pred_boxes.nonempty()]


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
                        help="test images as HxW (already resized)")
    parser.add_argument("--pad", type=int, default=64, help="the reference's batch padding; 0 skips pad64")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--json", help="also write the numbers here")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    args = parser.parse_args()

    cfg = LazyConfig.apply_overrides(LazyConfig.load(args.config_file), args.opts)
    model = instantiate(cfg.model).eval().to(args.device)
    model.head_num_anchors = model.anchor_generator.num_cell_anchors[0]
    rows = []
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    for seed in args.seeds:
        randomize(model, seed)
        calibrate(model, smooth_image(*sizes[0], seed=seed * 1000 + 999))
        for i, (size, (height, width)) in enumerate(zip(args.sizes, sizes)):
            image = smooth_image(height, width, seed * 1000 + i)
            with torch.no_grad():
                own = raw_outputs(model, image, 0)
                ref_pad = raw_outputs(model, image, args.pad) if args.pad else own
                base = dict(cap_by_anchors=False, clip_first=False, legacy=False)
                ours = detections(model, own, **base)
                variants = {
                    "pad64": detections(model, ref_pad, **base) if args.pad else ours,
                    "topk_cap": detections(model, own, **{**base, "cap_by_anchors": True}),
                    "clip_first": detections(model, own, **{**base, "clip_first": True}),
                    "legacy_plus_one": detections(model, own, **{**base, "legacy": True}),
                    "reference": detections(model, ref_pad, cap_by_anchors=True, clip_first=True, legacy=True),
                }
            row = {"seed": seed, "size": size, "detections": len(ours),
                   **{name: unmatched(ours, det) for name, det in variants.items()}}
            rows.append(row)
            print(json.dumps(row), flush=True)
    total = sum(r["detections"] for r in rows)
    print(f"\n{args.config_file}: detections of this project's inference without a counterpart "
          f"(same class, IoU >= 0.95) under each reference rule, {len(rows)} images, {total} detections")
    print("| rule | changed | of all |")
    print("|---|---|---|")
    summary = {}
    for name in VARIANTS:
        changed = sum(r[name] for r in rows)
        summary[name] = changed / max(total, 1)
        print(f"| {name} | {changed} | {100 * summary[name]:.1f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "fraction_changed": summary}, f, indent=1)


if __name__ == "__main__":
    main()
