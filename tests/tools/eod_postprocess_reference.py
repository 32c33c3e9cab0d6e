"""The reference's (EOD / United-Perception) inference after the network, re-stated for the tests
from its source, NOT from this project's modules:

- ``eod_anchors``: up/tasks/det/models/utils/anchor_generator.py ``HandCraftAnchorGenerator``
  (base window (0, 0, s - 1, s - 1) scaled about its centre (s - 1) / 2; "aligned": a window
  centred on 0), spread over the grid at shifts 0, s, 2s, ..., anchors inner;
- ``eod_decode``, ``eod_clip``: bbox_helper.py ``offset2bbox``, ``clip_bbox``, ``filter_by_size``;
- ``eod_detections``: postprocess/roi_predictor.py ``RoiPredictorMultiCls.single_level_predict``
  (per level: decode, clip to ``image_info``, drop boxes with x2 - x1 + offset <= 0, sort the
  (anchor, class) scores, keep min(pre_nms_top_n, boxes left)), ``RetinaMergerMultiCls.merge``
  (sort by score, add label x 4096, NMS, top_n) with the NMS kernel's loop (float32, widths
  x2 - x1 + offset, suppress IoU > threshold), and data/datasets/coco_dataset.py ``dump`` (divide
  by the scale, w = x2 - x1 + offset, no effective clip).

``offset`` is the reference's ALIGNED_FLAG.offset: 1 for the improved baseline, 0 for YOLOX-IP
("aligned: True"). Scores are sigmoid(class) x sigmoid(IoU) (retina_post_iou ``apply_activation``).
"""
import numpy as np
import torch

NMS_CLASS_OFFSET = 4096  # RetinaMergerMultiCls.INF


def eod_anchors(height, width, stride, scales, aligned):
    """(H * W * A, 4) anchors of one level, in the reference's coordinates."""
    if aligned:
        base = [[-0.5 * stride * s, -0.5 * stride * s, 0.5 * stride * s, 0.5 * stride * s] for s in scales]
    else:
        ctr = 0.5 * (stride - 1)  # _whctrs of (0, 0, stride - 1, stride - 1)
        base = [[ctr - 0.5 * (stride * s - 1), ctr - 0.5 * (stride * s - 1),
                 ctr + 0.5 * (stride * s - 1), ctr + 0.5 * (stride * s - 1)] for s in scales]
    base = torch.tensor(base, dtype=torch.float32)
    shift_y, shift_x = torch.meshgrid(torch.arange(0, height * stride, stride, dtype=torch.float32),
                                      torch.arange(0, width * stride, stride, dtype=torch.float32),
                                      indexing="ij")
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=-1).reshape(-1, 1, 4)
    return (base[None] + shifts).reshape(-1, 4)


def eod_decode(anchors, deltas, offset):
    widths = anchors[:, 2] - anchors[:, 0] + offset
    heights = anchors[:, 3] - anchors[:, 1] + offset
    ctr_x = anchors[:, 0] + 0.5 * widths
    ctr_y = anchors[:, 1] + 0.5 * heights
    dx, dy = deltas[:, 0], deltas[:, 1]
    dw = torch.clamp(deltas[:, 2], max=np.log(1000.0 / 16.0))
    dh = torch.clamp(deltas[:, 3], max=np.log(1000.0 / 16.0))
    pred_ctr_x, pred_ctr_y = dx * widths + ctr_x, dy * heights + ctr_y
    pred_w, pred_h = torch.exp(dw) * widths, torch.exp(dh) * heights
    return torch.stack([pred_ctr_x - 0.5 * pred_w, pred_ctr_y - 0.5 * pred_h,
                        pred_ctr_x + 0.5 * pred_w - offset, pred_ctr_y + 0.5 * pred_h - offset], dim=1)


def eod_clip(boxes, height, width, offset):
    boxes = boxes.clone()
    boxes[:, 0] = torch.clamp(boxes[:, 0], min=0, max=width - offset)
    boxes[:, 1] = torch.clamp(boxes[:, 1], min=0, max=height - offset)
    boxes[:, 2] = torch.clamp(boxes[:, 2], min=0, max=width - offset)
    boxes[:, 3] = torch.clamp(boxes[:, 3], min=0, max=height - offset)
    keep = (boxes[:, 2] - boxes[:, 0] + offset > 0) & (boxes[:, 3] - boxes[:, 1] + offset > 0)
    return boxes[keep], keep


def eod_nms(dets, threshold, offset):
    """Indices kept of (N, 5) float32 dets sorted by score, greedily (the NMS kernel's loop)."""
    b = dets[:, :4].numpy().astype(np.float32)
    off = np.float32(offset)
    areas = (b[:, 2] - b[:, 0] + off) * (b[:, 3] - b[:, 1] + off)
    suppressed, keep = np.zeros(len(b), bool), []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = slice(i + 1, None)
        w = np.maximum(np.float32(0), np.minimum(b[i, 2], b[rest, 2]) - np.maximum(b[i, 0], b[rest, 0]) + off)
        h = np.maximum(np.float32(0), np.minimum(b[i, 3], b[rest, 3]) - np.maximum(b[i, 1], b[rest, 1]) + off)
        inter = w * h
        suppressed[rest] |= inter / (areas[i] + areas[rest] - inter) > np.float32(threshold)
    return torch.tensor(keep, dtype=torch.int64)


def eod_detections(cls_maps, box_maps, iou_maps, *, strides, scales, aligned, clip_size,
                   picture_scale, pre_nms_top_n, nms_threshold, top_n=300):
    """The reference's detections of one image from its raw head outputs (lists over levels of
    (1, A*C, H, W), (1, A*4, H, W), (1, A, H, W)), as ``dump`` writes them: rows
    (x, y, w, h, score, label) with label = class + 1, by decreasing score.

    clip_size: (h, w) of ``image_info`` (the resized image; YOLOX-IP: the padded canvas);
    picture_scale: (scale_h, scale_w), ``image_info[2]`` (resized / picture)."""
    offset = 0 if aligned else 1
    rois = []
    for cls, box, iou, stride in zip(cls_maps, box_maps, iou_maps, strides):
        num_anchors, (height, width) = iou.shape[1], iou.shape[-2:]
        num_classes = cls.shape[1] // num_anchors
        # the head's permute(0, 2, 3, 1).view(B, -1, C): locations outer, anchors inner
        scores = (cls.permute(0, 2, 3, 1).reshape(-1, num_classes).sigmoid()
                  * iou.permute(0, 2, 3, 1).reshape(-1, 1).sigmoid())
        deltas = box.permute(0, 2, 3, 1).reshape(-1, 4)
        boxes = eod_decode(eod_anchors(height, width, stride, scales, aligned), deltas, offset)
        boxes, keep = eod_clip(boxes, *clip_size, offset)
        flat = scores[keep].flatten()
        top = min(pre_nms_top_n, boxes.shape[0])
        top_scores, idx = flat.sort(descending=True)
        top_scores, idx = top_scores[:top], idx[:top]
        labels = (idx % num_classes + 1).float()
        rois.append(torch.cat([boxes[idx // num_classes], top_scores[:, None], labels[:, None]], 1))
    rois = torch.cat(rois)
    rois = rois[rois[:, 4].argsort(descending=True)]
    shifted = rois[:, :5].clone()
    shifted[:, :4] += rois[:, 5:6] * NMS_CLASS_OFFSET
    rois = rois[eod_nms(shifted, nms_threshold, offset)][:top_n]
    scale_h, scale_w = picture_scale
    x1, y1 = rois[:, 0] / scale_w, rois[:, 1] / scale_h
    x2, y2 = rois[:, 2] / scale_w, rois[:, 3] / scale_h
    return torch.stack([x1, y1, x2 - x1 + offset, y2 - y1 + offset, rois[:, 4], rois[:, 5]], dim=1)


def count_reproduced(reference, ours, box_tol=1e-3, score_tol=1e-5):
    """How many reference detections (x, y, w, h, score, label) have a detection of ours with
    the same label, every box number within box_tol and the score within score_tol."""
    if len(ours) == 0:
        return 0
    found = 0
    for row in reference:
        close = ((ours[:, 5] == row[5]) & ((ours[:, :4] - row[:4]).abs().max(dim=1).values <= box_tol)
                 & ((ours[:, 4] - row[4]).abs() <= score_tol))
        found += bool(close.any())
    return found


def ours_as_rows(instances):
    """Our detections as (x, y, w, h, score, label = class + 1) rows (Detectron2's COCO export)."""
    b = instances.pred_boxes.tensor
    return torch.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], instances.scores,
                        instances.pred_classes.float() + 1], dim=1)


__all__ = ["eod_anchors", "eod_decode", "eod_clip", "eod_nms", "eod_detections",
           "count_reproduced", "ours_as_rows"]
