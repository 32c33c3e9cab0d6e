"""Open Images Challenge CSVs -> the COCO-like JSON of EQLv2's `openimages2coco` tool.

Layout written (the one the reference's users train from):

- `categories`: `{"id": 1.., "name": DisplayName, "freebase_id": MID, "instance_count": boxes}` in
  the order of the class-description file;
- `images`: `{"id": ImageID, "file_name": ImageID + ".jpg", "width", "height",
  "pos_category_ids", "neg_category_ids"}` (the human-verified image-level labels, not expanded);
- `annotations`: `{"id": 1.., "image_id", "category_id", "freebase_id", "bbox": [x, y, w, h] in
  pixels, "area", "iscrowd": 0, "isgroupof", "isoccluded", "istruncated", "isdepiction",
  "isinside"}` (the flags the box file carries; -1 = unknown is kept).

Two departures from EQLv2's tool, both bugs there: it drops the first image-level label row (the
header is removed twice) and never writes the attribute flags (it looks for the column names in a
data row). Boxes are not rounded to 2 decimals either, so that evaluating the JSON gives the same
numbers as evaluating the CSVs. Images are those named in the box or image-level label file.
"""
import collections
import csv
import logging
import os

import numpy as np

from ..dataset_checks import DatasetCheckError
from .files import (
    read_box_csv,
    read_class_descriptions,
    read_hierarchy,
    read_image_labels_csv,
    read_image_sizes_csv,
)
from .hierarchy import LabelHierarchy

__all__ = ["convert_challenge_files", "image_size_from_file", "write_class_counts_csv"]

logger = logging.getLogger(__name__)


def image_size_from_file(path):
    """(width, height) from the image header (the pixels are not decoded)."""
    from PIL import Image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image {path} does not exist (needed for its size; or pass an image-size CSV)")
    with Image.open(path) as image:
        return image.size


def convert_challenge_files(*, boxes_csv, image_labels_csv, class_descriptions_csv, hierarchy_json=None,
                            image_sizes_csv=None, image_dir=None):
    """
    Args:
        boxes_csv: the box file (normalised coordinates, IsGroupOf and the other flags).
        image_labels_csv: the human-verified image-level labels (Confidence 1 / 0).
        class_descriptions_csv: `MID,DisplayName` without a header; its order gives category ids.
        hierarchy_json: the label hierarchy; checked against the classes (every node must be one).
        image_sizes_csv: image id, width, height; if None, sizes are read from `image_dir`.
        image_dir: folder with `<ImageID>.jpg`, for sizes not in `image_sizes_csv`.

    Returns:
        dict: the COCO-like dataset (see the module docstring).
    """
    mids, names = read_class_descriptions(class_descriptions_csv)
    class_index = {m: k for k, m in enumerate(mids)}
    if hierarchy_json is not None:
        try:
            LabelHierarchy(read_hierarchy(hierarchy_json), mids)
        except ValueError as e:
            raise DatasetCheckError(f"{hierarchy_json}: {e} of {class_descriptions_csv}") from None
    boxes = read_box_csv(boxes_csv, class_index)
    label_images, label_classes, label_positive = read_image_labels_csv(image_labels_csv, class_index)
    sizes = read_image_sizes_csv(image_sizes_csv) if image_sizes_csv else {}

    image_ids = sorted(set(boxes["image_ids"]) | set(label_images))
    positive, negative = collections.defaultdict(list), collections.defaultdict(list)
    for image_id, k, pos in zip(label_images, label_classes.tolist(), label_positive.tolist()):
        (positive if pos else negative)[image_id].append(k + 1)

    images = []
    for image_id in image_ids:
        if image_id in sizes:
            width, height = sizes[image_id]
        elif image_dir is not None:
            width, height = image_size_from_file(os.path.join(image_dir, image_id + ".jpg"))
        else:
            raise DatasetCheckError(
                f"no size for image {image_id}: it is not in {image_sizes_csv} and no image folder was given"
            )
        images.append({
            "id": image_id, "file_name": image_id + ".jpg", "width": int(width), "height": int(height),
            "pos_category_ids": positive.get(image_id, []), "neg_category_ids": negative.get(image_id, []),
        })

    size_of = {im["id"]: (im["width"], im["height"]) for im in images}
    wh = np.array([size_of[i] for i in boxes["image_ids"]], dtype=np.float64).reshape(-1, 2)
    scale = np.concatenate([wh, wh], axis=1)
    pixel = boxes["boxes"] * scale  # x0, y0, x1, y1 in pixels
    flag_keys = [k for k in ("isoccluded", "istruncated", "isgroupof", "isdepiction", "isinside") if k in boxes]
    annotations = []
    for i, (image_id, k) in enumerate(zip(boxes["image_ids"], boxes["classes"].tolist())):
        x0, y0, x1, y1 = pixel[i].tolist()
        ann = {
            "id": i + 1, "image_id": image_id, "category_id": k + 1, "freebase_id": mids[k],
            "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
        }
        for key in flag_keys:
            ann[key] = int(boxes[key][i])
        annotations.append(ann)

    counts = np.bincount(boxes["classes"], minlength=len(mids))
    categories = [
        {"id": k + 1, "name": names[k], "freebase_id": mids[k], "instance_count": int(counts[k])}
        for k in range(len(mids))
    ]
    logger.info("%s: %d images, %d boxes, %d classes", boxes_csv, len(images), len(annotations), len(mids))
    return {
        "info": {"description": "Open Images Challenge, converted by efl.data.openimages.convert"},
        "categories": categories,
        "images": images,
        "annotations": annotations,
    }


def write_class_counts_csv(path, dataset):
    """`LabelName,DisplayName,instance_count` per category of a converted `dataset`: the training
    counts that EQLv2's frequency groups sort by (read back by `files.read_class_counts_csv`)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["LabelName", "DisplayName", "instance_count"])
        for c in dataset["categories"]:
            writer.writerow([c["freebase_id"], c["name"], c["instance_count"]])
