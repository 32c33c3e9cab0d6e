"""The Open Images Challenge detection metric, vectorised with NumPy.

The protocol is the one of TensorFlow's Object Detection API (`OpenImagesDetectionChallengeEvaluator`
fed with ground truth that went through `oid_hierarchical_labels_expansion`); docs/openimages.md
states every rule and the few places where this implementation has to pin down what the official
code leaves to NumPy's unstable sort. In short:

- ground-truth boxes and positive image-level labels are copied to every ancestor class, negative
  image-level labels to every descendant; detections are never expanded;
- a class is evaluated on an image only if it is verified there (an expanded image-level label of
  either sign, or an expanded box); detections of other classes are ignored;
- zero-area detections are dropped; at most 10,000 detections per class and image (the official
  "NMS" that only sorts and truncates), no other cap;
- in score order each detection takes its highest-IoU box of its class (the first one on ties)
  and is a true positive if IoU >= 0.5 and that box is still free, a false positive otherwise;
- a detection that is not a true positive and lies inside a group-of box (intersection over the
  detection's area >= 0.5, again the highest one) is ignored; each group-of box matched by at
  least one detection with a positive score yields one true positive at the highest such score;
  every group-of box counts once in the number of ground-truth boxes;
- per class: VOC all-point AP (area under the precision envelope); a class without ground truth
  is NaN and left out of the mean.

The per-detection greedy loop of the official code needs no loop here: a detection's target box is
its argmax, which does not depend on the other detections, so the true positives are exactly the
first detection (in processing order) of each target box among those with IoU >= the threshold.
"""
import dataclasses
from typing import List, Optional

import numpy as np

from .hierarchy import LabelHierarchy

__all__ = [
    "OIDDetections",
    "OIDGroundTruth",
    "OIDResult",
    "evaluate_oid_challenge",
    "expand_ground_truth",
    "frequency_groups",
    "group_mean_ap",
]

# The official tool runs every detection list through a non-maximum suppression whose IoU
# threshold is 1.0: it only sorts by score and keeps this many per class and image.
MAX_DETECTIONS_PER_CLASS_AND_IMAGE = 10000


@dataclasses.dataclass
class OIDGroundTruth:
    """Ground truth of a set of images in any box frame shared with the detections (pixels or
    normalised), boxes as (x0, y0, x1, y1).

    Attributes:
        image_ids: the id of each image; the other arrays index into it. Its order is the image
            order of the protocol (it only decides the order of entries with equal scores).
        box_image, box_class, boxes, box_group_of: (M,), (M,), (M, 4), (M,) per box.
        label_image, label_class, label_positive: (L,) per verified image-level label.
    """

    image_ids: list
    box_image: np.ndarray
    box_class: np.ndarray
    boxes: np.ndarray
    box_group_of: np.ndarray
    label_image: np.ndarray
    label_class: np.ndarray
    label_positive: np.ndarray

    @classmethod
    def from_lists(cls, image_ids, *, box_image=(), box_class=(), boxes=(), box_group_of=(),
                   label_image=(), label_class=(), label_positive=()):
        return cls(
            list(image_ids),
            np.asarray(box_image, dtype=np.int64).reshape(-1),
            np.asarray(box_class, dtype=np.int64).reshape(-1),
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(box_group_of, dtype=bool).reshape(-1),
            np.asarray(label_image, dtype=np.int64).reshape(-1),
            np.asarray(label_class, dtype=np.int64).reshape(-1),
            np.asarray(label_positive, dtype=bool).reshape(-1),
        )


@dataclasses.dataclass
class OIDDetections:
    """Detections: image index into `OIDGroundTruth.image_ids` (-1: an image without ground truth,
    ignored as the official tool does), class, box (x0, y0, x1, y1) and score, each (D,) / (D, 4)."""

    image: np.ndarray
    cls: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_lists(cls, image=(), classes=(), boxes=(), scores=()):
        return cls(
            np.asarray(image, dtype=np.int64).reshape(-1),
            np.asarray(classes, dtype=np.int64).reshape(-1),
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            np.asarray(scores, dtype=np.float64).reshape(-1),
        )

    @classmethod
    def concatenate(cls, parts):
        parts = list(parts)
        if not parts:
            return cls.from_lists()
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))


@dataclasses.dataclass
class OIDResult:
    """Per class: `ap` (NaN without ground truth) and `num_gt` (boxes after expansion, group-of
    boxes once each); `mean_ap` over the classes with ground truth."""

    ap: np.ndarray
    num_gt: np.ndarray

    @property
    def mean_ap(self) -> float:
        valid = ~np.isnan(self.ap)
        return float(self.ap[valid].mean()) if valid.any() else float("nan")


def _flat_table(lists):
    """Ragged list of int lists -> (values, offsets, lengths)."""
    lengths = np.array([len(x) for x in lists], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    values = np.array([v for x in lists for v in x], dtype=np.int64)
    return values, offsets, lengths


def _expand(items, classes, table):
    """Each item i with class c -> itself followed by one copy per entry of table[c]."""
    values, offsets, lengths = table
    counts = 1 + lengths[classes]
    item = np.repeat(np.arange(len(classes)), counts)
    # position within each item's run: 0 = the item itself, j >= 1 = table entry j - 1
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    expanded_class = classes[item].copy()
    copies = within > 0
    expanded_class[copies] = values[offsets[classes[item[copies]]] + within[copies] - 1]
    return items[item], expanded_class, item


def expand_ground_truth(gt: OIDGroundTruth, hierarchy: LabelHierarchy) -> OIDGroundTruth:
    """Boxes and positive labels up to every ancestor, negative labels down to every descendant;
    each box is followed by its copies (the row order of the official expansion script)."""
    box_image, box_class, item = _expand(gt.box_image, gt.box_class, _flat_table(hierarchy.ancestors))
    up, down = _flat_table(hierarchy.ancestors), _flat_table(hierarchy.descendants)
    pos, neg = gt.label_positive, ~gt.label_positive
    pos_image, pos_class, _ = _expand(gt.label_image[pos], gt.label_class[pos], up)
    neg_image, neg_class, _ = _expand(gt.label_image[neg], gt.label_class[neg], down)
    return OIDGroundTruth(
        gt.image_ids,
        box_image,
        box_class,
        gt.boxes[item],
        gt.box_group_of[item],
        np.concatenate([pos_image, neg_image]),
        np.concatenate([pos_class, neg_class]),
        np.concatenate([np.ones(len(pos_image), bool), np.zeros(len(neg_image), bool)]),
    )


def _pairs(query_keys, ref_keys):
    """All (query, ref) index pairs with equal keys, grouped by query in increasing order and, per
    query, refs in their original order."""
    ref_order = np.argsort(ref_keys, kind="stable")
    sorted_keys = ref_keys[ref_order]
    lo = np.searchsorted(sorted_keys, query_keys, "left")
    n = np.searchsorted(sorted_keys, query_keys, "right") - lo
    query = np.repeat(np.arange(len(query_keys)), n)
    shift = np.repeat(lo - (np.cumsum(n) - n), n)
    return query, ref_order[np.arange(n.sum()) + shift]


def _first_argmax(query, ref, values, num_queries):
    """Per query: the largest value over its pairs and the first ref attaining it (np.argmax's
    rule); -inf / -1 for a query without pairs. `query` must be non-decreasing."""
    best = np.full(num_queries, -np.inf)
    best_ref = np.full(num_queries, -1, dtype=np.int64)
    if len(query) == 0:
        return best, best_ref
    starts = np.flatnonzero(np.r_[True, query[1:] != query[:-1]])
    seg_max = np.maximum.reduceat(values, starts)
    lengths = np.diff(np.r_[starts, len(query)])
    hits = np.flatnonzero(values == np.repeat(seg_max, lengths))
    _, first = np.unique(query[hits], return_index=True)
    hits = hits[first]
    best[query[hits]] = values[hits]
    best_ref[query[hits]] = ref[hits]
    return best, best_ref


def _intersection(a, b):
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    return w * h


def _area(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _voc_ap(tp, num_gt):
    """All-point VOC AP of entries already in rank order; tp is 1.0 / 0.0."""
    if len(tp) == 0:
        return 0.0
    cum_tp = np.cumsum(tp)
    precision = cum_tp / np.arange(1, len(tp) + 1)
    recall = cum_tp / num_gt
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changed = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[changed] - recall[changed - 1]) * precision[changed]))


def evaluate_oid_challenge(gt: OIDGroundTruth, detections: OIDDetections, *, num_classes: int,
                           hierarchy: Optional[LabelHierarchy] = None, iou_threshold: float = 0.5,
                           expanded: bool = False) -> OIDResult:
    """
    Args:
        gt: the ground truth, before expansion (or after, with expanded=True).
        detections: the detections, never expanded.
        num_classes: number of classes C; class ids are 0..C-1.
        hierarchy: the class hierarchy; None evaluates without expansion.
        iou_threshold: the matching threshold, for IoU and for IoA with group-of boxes.
        expanded: whether `gt` is already expanded.
    """
    if hierarchy is not None and not expanded:
        gt = expand_ground_truth(gt, hierarchy)
    C = int(num_classes)
    num_gt = np.bincount(gt.box_class, minlength=C)[:C].astype(np.float64)

    # verified (image, class) pairs; detections elsewhere are ignored
    verified = np.unique(np.concatenate([gt.label_image * C + gt.label_class, gt.box_image * C + gt.box_class]))
    det_key = detections.image * C + detections.cls
    boxes = detections.boxes
    keep = (detections.image >= 0) & np.isin(det_key, verified)
    keep &= (boxes[:, 0] < boxes[:, 2]) & (boxes[:, 1] < boxes[:, 3])
    kept = np.flatnonzero(keep)
    # processing order: by (image, class), score descending; equal scores: the later detection
    # first (the official sort is argsort reversed)
    order = kept[np.lexsort((-kept, -detections.scores[kept], det_key[kept]))]
    key, boxes, scores = det_key[order], boxes[order], detections.scores[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    rank = np.arange(len(key)) - np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    within_cap = rank < MAX_DETECTIONS_PER_CLASS_AND_IMAGE
    key, boxes, scores = key[within_cap], boxes[within_cap], scores[within_cap]
    num_dets = len(key)

    gt_key = gt.box_image * C + gt.box_class
    single = np.flatnonzero(~gt.box_group_of)
    group = np.flatnonzero(gt.box_group_of)

    # stage 1: each detection takes its highest-IoU box; the first taker with IoU >= t wins it
    q, r = _pairs(key, gt_key[single])
    inter = _intersection(boxes[q], gt.boxes[single][r])
    iou = inter / (_area(boxes[q]) + _area(gt.boxes[single][r]) - inter)
    best_iou, target = _first_argmax(q, r, iou, num_dets)
    candidates = np.flatnonzero(best_iou >= iou_threshold)
    _, first = np.unique(target[candidates], return_index=True)
    is_tp = np.zeros(num_dets, dtype=bool)
    is_tp[candidates[first]] = True

    # stage 2: the other detections inside a group-of box (by IoA) are absorbed by it
    rest = np.flatnonzero(~is_tp)
    q, r = _pairs(key[rest], gt_key[group])
    ioa = _intersection(boxes[rest][q], gt.boxes[group][r]) / _area(boxes[rest][q])
    best_ioa, group_target = _first_argmax(q, r, ioa, len(rest))
    absorbed = best_ioa >= iou_threshold
    group_score = np.zeros(len(group))
    np.maximum.at(group_score, group_target[absorbed], scores[rest][absorbed])
    ignored = np.zeros(num_dets, dtype=bool)
    ignored[rest[absorbed]] = True

    # entries: surviving detections, then one true positive per matched group-of box
    hit = np.flatnonzero(group_score > 0)
    det_entries = np.flatnonzero(~ignored)
    entry_key = np.concatenate([key[det_entries], gt_key[group][hit]])
    entry_score = np.concatenate([scores[det_entries], group_score[hit]])
    entry_tp = np.concatenate([is_tp[det_entries].astype(np.float64), np.ones(len(hit))])
    entry_kind = np.concatenate([np.zeros(len(det_entries)), np.ones(len(hit))])
    entry_within = np.concatenate([det_entries, hit]).astype(np.float64)
    entry_image, entry_class = entry_key // C, entry_key % C
    # per class by descending score; equal scores: the entry later in (image, detections before
    # group-of boxes, position) order first, as the official reversed argsort of the concatenation
    rank_order = np.lexsort((-entry_within, -entry_kind, -entry_image, -entry_score, entry_class))
    entry_class, entry_tp = entry_class[rank_order], entry_tp[rank_order]

    ap = np.full(C, np.nan)
    bounds = np.searchsorted(entry_class, np.arange(C + 1))
    for c in np.flatnonzero(num_gt > 0):
        ap[c] = _voc_ap(entry_tp[bounds[c]:bounds[c + 1]], num_gt[c])
    return OIDResult(ap=ap, num_gt=num_gt)


def frequency_groups(instance_counts, num_groups: int = 5) -> List[np.ndarray]:
    """EQLv2's groups: classes sorted ascending by training instance count (equal counts by class
    id), cut into `num_groups` consecutive blocks of equal size (sizes differ by at most one when
    C is not a multiple; the first blocks are the larger)."""
    counts = np.asarray(instance_counts)
    return np.array_split(np.argsort(counts, kind="stable"), num_groups)


def group_mean_ap(ap, groups) -> List[float]:
    """Mean of the non-NaN APs of each group (NaN for a group without any)."""
    out = []
    for members in groups:
        values = np.asarray(ap)[members]
        values = values[~np.isnan(values)]
        out.append(float(values.mean()) if len(values) else float("nan"))
    return out
