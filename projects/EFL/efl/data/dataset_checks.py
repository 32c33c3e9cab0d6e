"""Checks of Detectron2 dataset dicts, applied where the dicts are built, so that the mapper, the
assigner and the loss never see a malformed box.

What happens to each kind of bad input:

- bbox that is not 4 finite numbers (e.g. strings), or with a negative width or height: error
  naming the image id and annotation id (for a json: when the file is read, naming the file too,
  see `efl.data.annotation_json`);
- box with zero width or height: dropped, counted in the log with an example;
- box partly outside the image: clipped to the image, counted;
- box entirely outside the image: dropped, counted;
- image without (remaining) annotations: kept and counted. The test set needs every image;
  training drops them with `get_detection_dataset_dicts(filter_empty=True)`, which logs its count;
- annotation whose image id is not among the file's images (counted by the json reader, see
  `efl.data.annotation_json`): dropped, counted;
- category id not in the dataset's classes: error naming the image id, annotation id and category;
- image file that does not exist: error naming the path and image id;
- image without a positive height/width: error naming the image id.
"""
import logging
import math
import os

__all__ = ["bbox_problem", "check_dataset_dicts", "DatasetCheckError"]

logger = logging.getLogger(__name__)


class DatasetCheckError(ValueError):
    """Malformed input that cannot be repaired without guessing."""


def bbox_problem(bbox):
    """Why an ``[x, y, width, height]`` box is malformed, or None: it must be 4 finite numbers
    (bools and strings are not numbers) with a width and a height that are not negative. A zero
    width or height is degenerate, not malformed: the checks drop and count such a box."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return "expected [x, y, width, height]"
    for field, value in zip(("x", "y", "width", "height"), bbox):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "the string" if isinstance(value, str) else f"a {type(value).__name__}"
            return f"its {field} is {kind} {value!r}, not a number"
        if not math.isfinite(value):
            return f"its {field} is not finite"
    for field, value in (("width", bbox[2]), ("height", bbox[3])):
        if value < 0:
            return f"its {field} is negative"
    return None


def _clip_box(bbox, width, height):
    x, y, w, h = bbox
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return [x0, y0, x1 - x0, y1 - y0]


def check_dataset_dicts(dataset_dicts, *, num_classes, source, check_files=True, file_category_offset=0,
                        orphan_annotations=None):
    """
    Check and repair dataset dicts whose annotations are in `BoxMode.XYWH_ABS` (what the LVIS and
    COCO loaders produce). The dicts are modified in place.

    Args:
        dataset_dicts: list[dict] in Detectron2's format; an annotation may carry its json "id"
            and "file_category_id", which errors then name (both are removed here).
        num_classes: valid category ids are 0 .. num_classes - 1.
        source: what the dicts were loaded from (json path or dataset name), for messages.
        check_files: whether to check that every image file exists.
        file_category_offset: file category id minus contiguous id (1 for LVIS files), so that
            errors also name the id as written in the file (when no "file_category_id" says it).
        orphan_annotations: ``{"count": n, "example": (annotation id, image id)}`` of annotations
            that the reader left out because their image id is not among the images.

    Returns:
        list[dict]: the same list.
    """
    counts = {"empty_box": 0, "clipped_box": 0, "outside_box": 0, "image_without_annotations": 0}
    examples = {}  # kind of dropped box -> its first (image id, annotation id, bbox)
    missing = []
    for record in dataset_dicts:
        image_id, width, height = record.get("image_id"), record.get("width"), record.get("height")
        if not (isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0):
            raise DatasetCheckError(f"{source}: image {image_id} has no positive width/height ({width}, {height})")
        if check_files and not os.path.isfile(record["file_name"]):
            missing.append((image_id, record["file_name"]))
            continue
        kept = []
        for ann in record.get("annotations", []):
            ann_id = ann.pop("id", None)
            in_file = ann.pop("file_category_id", None)
            category_id = ann["category_id"]
            if not (isinstance(category_id, int) and 0 <= category_id < num_classes):
                if category_id is None:
                    raise DatasetCheckError(
                        f"{source}: image {image_id}, annotation {ann_id} has category {in_file}, which is "
                        "not among the file's categories"
                    )
                if in_file is None:
                    in_file = category_id + file_category_offset if isinstance(category_id, int) else category_id
                raise DatasetCheckError(
                    f"{source}: image {image_id}, annotation {ann_id} has category {category_id} (0-based; "
                    f"{in_file} in the file), outside the {num_classes} classes of the dataset's metadata"
                )
            bbox = ann["bbox"]
            problem = bbox_problem(bbox)
            if problem:
                raise DatasetCheckError(
                    f"{source}: image {image_id}, annotation {ann_id} has a malformed bbox {bbox!r}: {problem}")
            if bbox[2] == 0 or bbox[3] == 0:
                counts["empty_box"] += 1
                examples.setdefault("empty_box", (image_id, ann_id, list(bbox)))
                continue
            clipped = _clip_box(bbox, width, height)
            if clipped[2] <= 0 or clipped[3] <= 0:
                counts["outside_box"] += 1
                examples.setdefault("outside_box", (image_id, ann_id, list(bbox)))
                continue
            if clipped != [float(v) for v in bbox]:
                counts["clipped_box"] += 1
                ann["bbox"] = clipped
            kept.append(ann)
        record["annotations"] = kept
        if not kept:
            counts["image_without_annotations"] += 1
    if missing:
        image_id, path = missing[0]
        raise DatasetCheckError(
            f"{source}: {len(missing)} image file(s) missing, e.g. image {image_id} at {path}"
        )
    if any(counts.values()):
        named = "".join(f" ({what}: e.g. image {examples[kind][0]}, annotation {examples[kind][1]}, "
                        f"bbox {examples[kind][2]})"
                        for kind, what in (("empty_box", "zero area"), ("outside_box", "outside"))
                        if kind in examples)
        logger.warning(
            "%s: dropped %d boxes of zero area and %d boxes outside their image%s, clipped %d boxes to "
            "their image; %d images have no annotations",
            source,
            counts["empty_box"],
            counts["outside_box"],
            named,
            counts["clipped_box"],
            counts["image_without_annotations"],
        )
    if orphan_annotations and orphan_annotations["count"]:
        ann_id, image_id = orphan_annotations["example"]
        logger.warning(
            "%s: dropped %d annotations whose image id is not among the file's images (e.g. annotation "
            "%s of image %s)", source, orphan_annotations["count"], ann_id, image_id,
        )
    return dataset_dicts
