"""Ground truth and predictions for the Open Images metric, from either layout.

- COCO-like JSON ground truth (tools/convert_openimages.py) with a COCO results list (pixel
  x, y, w, h): evaluated in pixels.
- The challenge CSVs (normalised boxes) with a predictions CSV: evaluated in normalised
  coordinates, as the official tool does.
- Mixed: a results list on CSV ground truth needs the image sizes (pixels -> normalised); a
  predictions CSV on JSON ground truth takes them from the JSON.
IoU and IoA do not change when both axes are scaled, so the layouts give the same numbers.
"""
import collections
import dataclasses
import json
import logging
import os
from typing import List

import numpy as np

from ..annotation_json import read_annotation_json
from ..dataset_checks import DatasetCheckError
from .files import (
    class_mid,
    read_box_csv,
    read_class_counts_csv,
    read_class_descriptions,
    read_image_labels_csv,
    read_image_sizes_csv,
    read_predictions_csv,
)

from .metric import OIDDetections, OIDGroundTruth

__all__ = [
    "OIDDataset",
    "load_class_counts",
    "load_ground_truth_csv",
    "load_ground_truth_json",
    "load_predictions",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class OIDDataset:
    """Ground truth with its classes.

    Attributes:
        mids, names: label (MID) and display name per class.
        category_ids: the file's category id per class (COCO results name classes by it).
        gt: the ground truth (not expanded).
        image_index: {image id: index into gt.image_ids}.
        image_sizes: (N, 2) width, height per image; NaN where unknown.
        normalized: whether boxes are normalised (CSV) rather than pixels (JSON).
    """

    mids: List[str]
    names: List[str]
    category_ids: List[int]
    gt: OIDGroundTruth
    image_index: dict
    image_sizes: np.ndarray
    normalized: bool


def load_ground_truth_json(json_file) -> OIDDataset:
    """The COCO-like JSON of tools/convert_openimages.py (or EQLv2's layout with the flags), read
    by the project's one COCO-file reader (`efl.data.annotation_json`, which also checks the
    required keys and the boxes)."""
    dataset = read_annotation_json(json_file)
    categories = sorted(dataset["categories"], key=lambda c: c["id"])
    contiguous = {c["id"]: k for k, c in enumerate(categories)}

    def class_of(category_id, where):
        if category_id not in contiguous:
            raise DatasetCheckError(f"{json_file}: {where} names category {category_id}, not in 'categories'")
        return contiguous[category_id]

    image_ids, sizes, label_image, label_class, label_positive = [], [], [], [], []
    for i, image in enumerate(dataset["images"]):
        for key in ("pos_category_ids", "neg_category_ids"):
            if key not in image:
                raise DatasetCheckError(
                    f"{json_file}: image {image['id']} has no '{key}' (the verified image-level labels the "
                    "metric needs; write the file with tools/convert_openimages.py)"
                )
        image_ids.append(image["id"])
        sizes.append((image["width"], image["height"]))
        for key, positive in (("pos_category_ids", True), ("neg_category_ids", False)):
            for category_id in image[key]:
                label_image.append(i)
                label_class.append(class_of(category_id, f"image {image['id']} {key}"))
                label_positive.append(positive)
    image_index = {image_id: i for i, image_id in enumerate(image_ids)}
    if len(image_index) != len(image_ids):
        raise DatasetCheckError(f"{json_file}: an image id is listed twice in 'images'")

    box_image, box_class, boxes, group_of = [], [], [], []
    for ann in dataset["annotations"]:
        where = f"annotation {ann['id']} (image {ann['image_id']})"
        if ann["image_id"] not in image_index:
            raise DatasetCheckError(f"{json_file}: {where} names an image not in 'images'")
        if "isgroupof" not in ann:
            raise DatasetCheckError(
                f"{json_file}: {where} has no 'isgroupof' flag (files written by EQLv2's openimages2coco lack the "
                "flags: convert the CSVs again with tools/convert_openimages.py)"
            )
        x, y, w, h = ann["bbox"]
        box_image.append(image_index[ann["image_id"]])
        box_class.append(class_of(ann["category_id"], where))
        boxes.append((x, y, x + w, y + h))
        # the official tool reads IsGroupOf as a boolean: -1 (unknown) counts as group-of
        group_of.append(int(ann["isgroupof"]) != 0)
    gt = OIDGroundTruth.from_lists(
        image_ids, box_image=box_image, box_class=box_class, boxes=boxes, box_group_of=group_of,
        label_image=label_image, label_class=label_class, label_positive=label_positive,
    )
    return OIDDataset(
        mids=[class_mid(c) for c in categories],
        names=[c["name"] for c in categories],
        category_ids=[c["id"] for c in categories],
        gt=gt,
        image_index=image_index,
        image_sizes=np.asarray(sizes, dtype=np.float64).reshape(-1, 2),
        normalized=False,
    )


def load_ground_truth_csv(*, boxes_csv, image_labels_csv, class_descriptions_csv, image_sizes_csv=None) -> OIDDataset:
    """The challenge CSVs. Images are those of either file, in sorted id order (the official tool
    groups by ImageID, which sorts)."""
    mids, names = read_class_descriptions(class_descriptions_csv)
    class_index = {m: k for k, m in enumerate(mids)}
    boxes = read_box_csv(boxes_csv, class_index)
    label_images, label_classes, label_positive = read_image_labels_csv(image_labels_csv, class_index)
    image_ids = sorted(set(boxes["image_ids"]) | set(label_images))
    image_index = {image_id: i for i, image_id in enumerate(image_ids)}
    sizes = np.full((len(image_ids), 2), np.nan)
    if image_sizes_csv:
        for image_id, wh in read_image_sizes_csv(image_sizes_csv).items():
            if image_id in image_index:
                sizes[image_index[image_id]] = wh
    gt = OIDGroundTruth.from_lists(
        image_ids,
        box_image=[image_index[i] for i in boxes["image_ids"]],
        box_class=boxes["classes"],
        boxes=boxes["boxes"],
        box_group_of=boxes["isgroupof"] != 0,  # -1 (unknown) counts as group-of, as the official tool reads it
        label_image=[image_index[i] for i in label_images],
        label_class=label_classes,
        label_positive=label_positive,
    )
    return OIDDataset(mids, names, list(range(1, len(mids) + 1)), gt, image_index, sizes, normalized=True)


def _image_indices(image_ids, dataset, source):
    index = np.array([dataset.image_index.get(i, -1) for i in image_ids], dtype=np.int64)
    unknown = index < 0
    if unknown.any():
        names = {image_ids[k] for k in np.flatnonzero(unknown)}
        logger.warning(
            "%s: %d detections on %d images without ground truth are ignored (as the official tool does), e.g. %r",
            source, int(unknown.sum()), len(names), next(iter(names)),
        )
    return index


def _rescale(boxes, image, dataset, *, to_normalized, source):
    """Boxes of known images between pixels and normalised coordinates."""
    known = image >= 0
    wh = np.full((len(image), 2), np.nan)
    wh[known] = dataset.image_sizes[image[known]]
    missing = known & np.isnan(wh).any(axis=1)
    if missing.any():
        image_id = dataset.gt.image_ids[image[np.flatnonzero(missing)[0]]]
        raise DatasetCheckError(
            f"{source}: the size of image {image_id} is unknown; pass the image-size CSV to convert its boxes"
        )
    scale = np.concatenate([wh, wh], axis=1)
    return boxes / scale if to_normalized else boxes * scale


def _read_results_json(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetCheckError(f"{path}: not valid JSON ({e})") from None


def load_predictions(path, dataset: OIDDataset) -> OIDDetections:
    """A COCO results list (.json: image_id, category_id, bbox in pixel x, y, w, h, score) or a
    predictions CSV (ImageID,LabelName,Score,XMin,XMax,YMin,YMax), in the frame of `dataset`."""
    if path.endswith(".csv"):
        image_ids, classes, boxes, scores = read_predictions_csv(path, {m: k for k, m in enumerate(dataset.mids)})
        image = _image_indices(image_ids, dataset, path)
        if not dataset.normalized:
            boxes = _rescale(boxes, image, dataset, to_normalized=False, source=path)
        return OIDDetections(image, classes, boxes, scores)

    results = _read_results_json(path)
    if not isinstance(results, list):
        raise DatasetCheckError(f"{path}: expected a list of COCO results (image_id, category_id, bbox, score)")
    contiguous = {c: k for k, c in enumerate(dataset.category_ids)}
    classes, boxes, scores, image_ids = [], [], [], []
    for n, r in enumerate(results):
        try:
            k = contiguous[r["category_id"]]
            x, y, w, h = (float(v) for v in r["bbox"])
            score = float(r["score"])
            image_ids.append(r["image_id"])
        except (KeyError, TypeError, ValueError):
            raise DatasetCheckError(
                f"{path}: result {n} is not {{image_id, category_id (one of the ground truth's), bbox [x, y, w, h], "
                f"score}}: {r!r}"
            ) from None
        classes.append(k)
        boxes.append((x, y, x + w, y + h))
        scores.append(score)
    image = _image_indices(image_ids, dataset, path)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if dataset.normalized:
        boxes = _rescale(boxes, image, dataset, to_normalized=True, source=path)
    return OIDDetections.from_lists(image, classes, boxes, scores)


def load_class_counts(path, mids):
    """Training instance counts per class from a CSV (`LabelName,instance_count`) or a training
    JSON (its annotations are counted; classes matched by `freebase_id`)."""
    if not path.endswith(".json"):
        return read_class_counts_csv(path, mids)
    dataset = read_annotation_json(path)
    mid_of = {c["id"]: class_mid(c) for c in dataset["categories"]}
    index = {m: k for k, m in enumerate(mids)}
    absent = [m for m in mids if m not in set(mid_of.values())]
    if absent:
        raise DatasetCheckError(f"{path}: class {absent[0]!r} of the ground truth is not among its categories")
    counts = collections.Counter(mid_of.get(a["category_id"]) for a in dataset["annotations"])
    return np.array([counts[m] for m in index], dtype=np.int64)
