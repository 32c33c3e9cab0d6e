"""Open Images Challenge 2019 datasets (the 500 boxable classes) for the EFL project.

Layout under `$EFL_OID_ROOT` (the reference's, with JSON written by `tools/convert_openimages.py`):
```
$EFL_OID_ROOT/annotations/openimages_challenge_2019_train_bbox.json
$EFL_OID_ROOT/annotations/openimages_challenge_2019_val_bbox.json
$EFL_OID_ROOT/annotations/challenge-2019-label500-hierarchy.json
$EFL_OID_ROOT/annotations/openimages_challenge_2019_train_class_counts.csv   (for mAP0-mAP4)
$EFL_OID_ROOT/train/<ImageID>.jpg
$EFL_OID_ROOT/validation/<ImageID>.jpg
```
registered as `oid_challenge_2019_train_efl` / `oid_challenge_2019_val_efl`.

Training as the reference (EOD's COCO dataset on EQLv2's JSON): every box is an ordinary box of
its class, group-of boxes included (EOD reads only `iscrowd`, which the JSON sets to 0 for every
box); the hierarchy and the image-level labels are not used in training. Boxes go through
`efl.data.check_dataset_dicts` as LVIS's do: degenerate boxes dropped and counted, boxes clipped to
their image and counted, unknown categories and missing image files are errors naming the image.
Detectron2's `get_detection_dataset_dicts(filter_empty=True)` then drops images without boxes, as
EOD trains only on images with annotations.

Metadata: `thing_classes` (display names), `class_freebase_ids` (MIDs), `json_file`,
`image_root`, `hierarchy_file`, `class_counts_file`, `evaluator_type="openimages"`; after loading
also `hierarchy` (the dict) and, for the training split, `class_instance_count` (boxes per class
in the training JSON, what EQLv2's frequency groups sort by).
"""
import json
import logging
import os

import numpy as np

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from .dataset_checks import DatasetCheckError, check_dataset_dicts
from .openimages_csv import read_hierarchy

__all__ = [
    "OID_ROOT_ENV",
    "load_openimages_json",
    "register_openimages_json",
    "register_oid_challenge_2019_efl",
]

logger = logging.getLogger(__name__)

OID_ROOT_ENV = "EFL_OID_ROOT"
_HIERARCHY = "annotations/challenge-2019-label500-hierarchy.json"
_CLASS_COUNTS = "annotations/openimages_challenge_2019_train_class_counts.csv"
_SPLITS = {
    "oid_challenge_2019_train_efl": ("annotations/openimages_challenge_2019_train_bbox.json", "train"),
    "oid_challenge_2019_val_efl": ("annotations/openimages_challenge_2019_val_bbox.json", "validation"),
}


def _read_json(json_file, dataset_name):
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{dataset_name}: annotation file {json_file} does not exist")
    with open(json_file) as f:
        dataset = json.load(f)
    for key in ("categories", "images", "annotations"):
        if key not in dataset:
            raise DatasetCheckError(f"{json_file}: no '{key}' list (expected the COCO-like Open Images layout)")
    return dataset


def load_openimages_json(json_file, image_root, dataset_name, *, check_files=True):
    """
    Read an Open Images COCO-like JSON into Detectron2 dataset dicts (boxes in XYWH_ABS, category
    ids contiguous in the order of the file's category ids) and check them.

    Args:
        json_file: the JSON written by tools/convert_openimages.py.
        image_root: folder of the images' `file_name`.
        dataset_name: a registered dataset; its metadata gets `thing_classes`,
            `class_freebase_ids` and `class_instance_count` from the file.
        check_files: whether every image file must exist.
    """
    dataset = _read_json(json_file, dataset_name)
    categories = sorted(dataset["categories"], key=lambda c: c["id"])
    contiguous = {c["id"]: k for k, c in enumerate(categories)}
    num_classes = len(categories)

    records, by_image = [], {}
    for image in dataset["images"]:
        record = {
            "file_name": os.path.join(image_root, image["file_name"]),
            "image_id": image["id"],
            "height": image.get("height"),
            "width": image.get("width"),
            "annotations": [],
        }
        by_image[image["id"]] = record
        records.append(record)
    instance_count = np.zeros(num_classes, dtype=np.int64)
    for ann in dataset["annotations"]:
        record = by_image.get(ann["image_id"])
        if record is None:
            raise DatasetCheckError(
                f"{json_file}: annotation {ann.get('id')} names image {ann['image_id']!r}, not in 'images'"
            )
        k = contiguous.get(ann["category_id"])
        if k is None:
            raise DatasetCheckError(
                f"{json_file}: image {ann['image_id']}, annotation {ann.get('id')} has category {ann['category_id']}, "
                f"not one of the file's {num_classes} categories"
            )
        instance_count[k] += 1
        # iscrowd 0 for every box, group-of included: the reference trains on them as on any box
        record["annotations"].append(
            {"id": ann.get("id"), "bbox": ann["bbox"], "bbox_mode": BoxMode.XYWH_ABS, "category_id": k, "iscrowd": 0}
        )
    MetadataCatalog.get(dataset_name).set(
        thing_classes=[c["name"] for c in categories],
        class_freebase_ids=[c.get("freebase_id", c["name"]) for c in categories],
    )
    if "train" in os.path.basename(json_file):
        MetadataCatalog.get(dataset_name).set(class_instance_count=instance_count.tolist())
    return check_dataset_dicts(records, num_classes=num_classes, source=json_file, check_files=check_files)


def register_openimages_json(name, *, json_file, image_root, hierarchy_file=None, class_counts_file=None,
                             loader=None):
    """
    Register an Open Images COCO-like JSON with Open Images evaluation metadata.

    Args:
        name: the dataset name.
        json_file: path of the JSON (read when the dataset is loaded).
        image_root: the image folder.
        hierarchy_file: the label hierarchy JSON (needed by the evaluator).
        class_counts_file: CSV `LabelName,instance_count` of the training set (for mAP0-mAP4).
        loader: optional replacement of the default loader.
    """
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)

    def load():
        records = load_openimages_json(json_file, image_root, name)
        if hierarchy_file is not None and os.path.isfile(hierarchy_file):
            MetadataCatalog.get(name).set(hierarchy=read_hierarchy(hierarchy_file))
        return records

    DatasetCatalog.register(name, loader or load)
    MetadataCatalog.get(name).set(
        json_file=json_file, image_root=image_root, hierarchy_file=hierarchy_file,
        class_counts_file=class_counts_file, evaluator_type="openimages",
    )


def _root_loader(name, root, json_file, image_root, hierarchy_file):
    def load():
        if root is None:
            raise FileNotFoundError(
                f"{name}: set the environment variable {OID_ROOT_ENV} to the Open Images root (holding "
                f"{_SPLITS[name][0]}, {_HIERARCHY}, {_SPLITS[name][1]}/), or call "
                "efl.data.register_oid_challenge_2019_efl(root)"
            )
        if not os.path.isfile(json_file):
            raise FileNotFoundError(
                f"{name}: {json_file} does not exist ({OID_ROOT_ENV}={root}); write it with tools/convert_openimages.py"
            )
        records = load_openimages_json(json_file, image_root, name)
        if os.path.isfile(hierarchy_file):
            MetadataCatalog.get(name).set(hierarchy=read_hierarchy(hierarchy_file))
        return records

    return load


def register_oid_challenge_2019_efl(root=None):
    """Register `oid_challenge_2019_{train,val}_efl` under `root` (default: `$EFL_OID_ROOT`;
    unset: loading is an error that says to set it)."""
    root = root if root is not None else os.environ.get(OID_ROOT_ENV)
    base = root if root is not None else f"${OID_ROOT_ENV}"
    hierarchy_file = os.path.join(base, _HIERARCHY)
    for name, (relative_json, image_dir) in _SPLITS.items():
        json_file, image_root = os.path.join(base, relative_json), os.path.join(base, image_dir)
        register_openimages_json(
            name, json_file=json_file, image_root=image_root, hierarchy_file=hierarchy_file,
            class_counts_file=os.path.join(base, _CLASS_COUNTS),
            loader=_root_loader(name, root, json_file, image_root, hierarchy_file),
        )
