"""Reading LVIS- and COCO-format annotation files into Detectron2's dataset dicts.

Both formats hold three lists, ``images``, ``annotations`` and ``categories``; LVIS adds per-image
``neg_category_ids`` / ``not_exhaustive_category_ids`` and a per-category ``frequency``. What this
module adds to Detectron2's ``load_lvis_json`` / ``load_coco_json``:

- a file that is not valid JSON (e.g. truncated), lacks one of the three lists, or has an entry
  without a required key is an error that names the file and the field;
- an annotation whose ``bbox`` is not 4 finite numbers (e.g. strings) or has a negative width or
  height is an error naming the file, the image, the annotation and the field, when the file is
  read (before anything computes with the box);
- an annotation whose ``image_id`` is not among the images is counted and reported with the dataset
  checks (Detectron2 drops it without a word);
- one code path for both formats, reading the file once.

Image paths: an LVIS-format file (its images carry ``neg_category_ids``) gives
``<image_root>/<split folder>/<file>`` from each image's ``coco_url``, as Detectron2's LVIS loader
does; a COCO-format file gives ``<image_root>/<file_name>``, as Detectron2's COCO loader does.
An image lacking the preferred key falls back to the other one.
"""
import json
import os

from detectron2.structures import BoxMode

from .dataset_checks import DatasetCheckError, bbox_problem

__all__ = ["read_annotation_json", "is_lvis_format", "dicts_from_annotation_json"]

# Keys every entry of each list must have (Detectron2's loaders index them unconditionally).
_REQUIRED_KEYS = {
    "images": ("id", "height", "width"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id",),
}


def read_annotation_json(json_file):
    """
    The parsed LVIS/COCO-format file, with its three lists and their required keys checked.

    Raises:
        FileNotFoundError: no such file.
        DatasetCheckError: not valid JSON, or a missing or malformed field; the message names the
            file and the field (and the entry's index and id).
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"annotation file {json_file} does not exist")
    try:
        with open(json_file, encoding="utf-8") as f:
            dataset = json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetCheckError(
            f"{json_file}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; is the file "
            "truncated?)"
        ) from None
    except UnicodeDecodeError as e:
        raise DatasetCheckError(f"{json_file}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    if not isinstance(dataset, dict):
        raise DatasetCheckError(f"{json_file}: the top level must be an object with 'images', 'annotations' "
                                f"and 'categories', got a {type(dataset).__name__}")
    for field, keys in _REQUIRED_KEYS.items():
        if field not in dataset:
            raise DatasetCheckError(f"{json_file}: no '{field}' field (an LVIS/COCO annotation file has "
                                    "'images', 'annotations' and 'categories')")
        entries = dataset[field]
        if not isinstance(entries, list):
            raise DatasetCheckError(f"{json_file}: '{field}' must be a list, got a {type(entries).__name__}")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise DatasetCheckError(f"{json_file}: {field}[{index}] must be an object, got {entry!r}")
            for key in keys:
                if key not in entry:
                    raise DatasetCheckError(
                        f"{json_file}: {field}[{index}] (id {entry.get('id')}) has no '{key}' field"
                    )
    for index, ann in enumerate(dataset["annotations"]):
        problem = bbox_problem(ann["bbox"])
        if problem:
            raise DatasetCheckError(f"{json_file}: image {ann['image_id']}, annotation {ann['id']} has a "
                                    f"malformed bbox {ann['bbox']!r} (field 'bbox' of annotations[{index}]): "
                                    f"{problem}")
    return dataset


def is_lvis_format(dataset):
    """Whether the images carry LVIS's federated-annotation fields."""
    return any("neg_category_ids" in image for image in dataset["images"])


def _image_path(image, image_root, lvis_format, json_file):
    keys = ("coco_url", "file_name") if lvis_format else ("file_name", "coco_url")
    for key in keys:
        if key in image:
            if key == "coco_url":
                # e.g. http://images.cocodataset.org/train2017/000000155379.jpg
                split_folder, file_name = image["coco_url"].split("/")[-2:]
                return os.path.join(image_root, split_folder, file_name)
            return os.path.join(image_root, image["file_name"])
    raise DatasetCheckError(f"{json_file}: image {image['id']} has neither 'file_name' nor 'coco_url'")


def dicts_from_annotation_json(dataset, json_file, image_root, *, category_id_map=None):
    """
    Detectron2 dataset dicts (boxes in ``BoxMode.XYWH_ABS``, sorted by image id) of a file read by
    :func:`read_annotation_json`. Each annotation keeps its json ``id`` and ``file_category_id`` (the
    dataset checks name them in errors and remove them). Categories are not checked here:
    ``check_dataset_dicts`` does that.

    Args:
        dataset: the parsed file.
        json_file: its path, for messages.
        image_root: the folder the image paths are relative to (see the module docstring).
        category_id_map: ``{file category id: contiguous id}``; None uses LVIS's convention,
            contiguous id = file id − 1.

    Returns:
        (list[dict], dict): the dicts, and ``{"count": n, "example": (annotation id, image id)}``
        of the annotations whose ``image_id`` is not among the images (left out of the dicts).
    """
    lvis_format = is_lvis_format(dataset)
    annotations_of = {image["id"]: [] for image in dataset["images"]}
    seen_ids = set()
    orphans = {"count": 0, "example": None}
    for ann in dataset["annotations"]:
        if ann["id"] in seen_ids:
            raise DatasetCheckError(f"{json_file}: annotation id {ann['id']} is not unique")
        seen_ids.add(ann["id"])
        per_image = annotations_of.get(ann["image_id"])
        if per_image is None:
            orphans["count"] += 1
            orphans["example"] = orphans["example"] or (ann["id"], ann["image_id"])
            continue
        per_image.append(ann)

    records = []
    for image in sorted(dataset["images"], key=lambda image: image["id"]):
        record = {
            "file_name": _image_path(image, image_root, lvis_format, json_file),
            "height": image["height"],
            "width": image["width"],
            "image_id": image["id"],
        }
        if lvis_format:
            record["not_exhaustive_category_ids"] = image.get("not_exhaustive_category_ids", [])
            record["neg_category_ids"] = image.get("neg_category_ids", [])
        objs = []
        for ann in annotations_of[image["id"]]:
            category_id = ann["category_id"]
            if category_id_map is None:
                contiguous = category_id - 1 if isinstance(category_id, int) else category_id
            else:
                contiguous = category_id_map.get(category_id)  # None: the dataset checks name it
            obj = {"bbox": ann["bbox"], "bbox_mode": BoxMode.XYWH_ABS, "category_id": contiguous,
                   "id": ann["id"], "file_category_id": category_id}
            if "segmentation" in ann:
                obj["segmentation"] = ann["segmentation"]
            if ann.get("iscrowd", 0):
                obj["iscrowd"] = 1  # Detectron2's mapper leaves crowd regions out of training
            objs.append(obj)
        record["annotations"] = objs
        records.append(record)
    return records, orphans
