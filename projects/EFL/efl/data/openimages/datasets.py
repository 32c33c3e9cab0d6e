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

The file is read by the project's one COCO-file reader (`efl.data.annotation_json`), as LVIS and
custom datasets are. Metadata: `thing_classes` (display names), `class_freebase_ids` (MIDs),
`thing_dataset_id_to_contiguous_id`, `json_file`,
`image_root`, `hierarchy_file`, `class_counts_file`, `evaluator_type="openimages"`; after loading
also `hierarchy` (the dict) and, for a training split (registered with `is_train=True`),
`class_instance_count` (boxes per class in the training JSON, what EQLv2's frequency groups sort
by).
"""
import logging
import os

import numpy as np

from detectron2.data import MetadataCatalog

from ..annotation_json import dicts_from_annotation_json, read_annotation_json
from ..dataset_checks import check_dataset_dicts
from ..registration import register_dataset, root_env_loader, root_from_env
from .files import class_mid, read_hierarchy

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
# name: (annotation file, image folder, whether it is the training split)
_SPLITS = {
    "oid_challenge_2019_train_efl": ("annotations/openimages_challenge_2019_train_bbox.json", "train", True),
    "oid_challenge_2019_val_efl": ("annotations/openimages_challenge_2019_val_bbox.json", "validation", False),
}


def load_openimages_json(json_file, image_root, dataset_name, *, is_train=False, check_files=True):
    """
    Read an Open Images COCO-like JSON into Detectron2 dataset dicts (boxes in XYWH_ABS, category
    ids contiguous in the order of the file's category ids) and check them.

    Args:
        json_file: the JSON written by tools/convert_openimages.py.
        image_root: folder of the images' `file_name`.
        dataset_name: a registered dataset; its metadata gets `thing_classes`,
            `class_freebase_ids`, `thing_dataset_id_to_contiguous_id` and, for a training split,
            `class_instance_count` from the file.
        is_train: whether this is a training split (its box counts set the frequency groups).
        check_files: whether every image file must exist.
    """
    dataset = read_annotation_json(json_file)
    categories = sorted(dataset["categories"], key=lambda c: c["id"])
    contiguous = {c["id"]: k for k, c in enumerate(categories)}
    meta = MetadataCatalog.get(dataset_name)
    meta.set(
        thing_classes=[c["name"] for c in categories],
        class_freebase_ids=[class_mid(c) for c in categories],
        thing_dataset_id_to_contiguous_id=contiguous,
    )
    if is_train:
        # every box of a known class counts, before the checks drop degenerate ones (EQLv2 counts
        # the file's boxes)
        known = [contiguous[a["category_id"]] for a in dataset["annotations"] if a["category_id"] in contiguous]
        meta.set(class_instance_count=np.bincount(known, minlength=len(categories)).tolist())
    records, orphans = dicts_from_annotation_json(dataset, json_file, image_root, category_id_map=contiguous)
    del dataset
    return check_dataset_dicts(records, num_classes=len(categories), source=json_file, check_files=check_files,
                               orphan_annotations=orphans)


def _loader_with_hierarchy(name, json_file, image_root, hierarchy_file, is_train):
    def load():
        records = load_openimages_json(json_file, image_root, name, is_train=is_train)
        if hierarchy_file is not None and os.path.isfile(hierarchy_file):
            MetadataCatalog.get(name).set(hierarchy=read_hierarchy(hierarchy_file))
        return records

    return load


def register_openimages_json(name, *, json_file, image_root, is_train=False, hierarchy_file=None,
                             class_counts_file=None, loader=None):
    """
    Register an Open Images COCO-like JSON with Open Images evaluation metadata.

    Args:
        name: the dataset name.
        json_file: path of the JSON (read when the dataset is loaded).
        image_root: the image folder.
        is_train: whether this is a training split (loading sets `class_instance_count`).
        hierarchy_file: the label hierarchy JSON (needed by the evaluator).
        class_counts_file: CSV `LabelName,instance_count` of the training set (for mAP0-mAP4).
        loader: optional replacement of the default loader.
    """
    register_dataset(
        name, loader or _loader_with_hierarchy(name, json_file, image_root, hierarchy_file, is_train),
        json_file=json_file, image_root=image_root, hierarchy_file=hierarchy_file,
        class_counts_file=class_counts_file, evaluator_type="openimages",
    )


def register_oid_challenge_2019_efl(root=None):
    """Register `oid_challenge_2019_{train,val}_efl` under `root` (default: `$EFL_OID_ROOT`;
    unset: loading is an error that says to set it)."""
    root, base = root_from_env(root, OID_ROOT_ENV)
    hierarchy_file = os.path.join(base, _HIERARCHY)
    for name, (relative_json, image_dir, is_train) in _SPLITS.items():
        json_file, image_root = os.path.join(base, relative_json), os.path.join(base, image_dir)
        load = _loader_with_hierarchy(name, json_file, image_root, hierarchy_file, is_train)
        register_openimages_json(
            name, json_file=json_file, image_root=image_root, is_train=is_train, hierarchy_file=hierarchy_file,
            class_counts_file=os.path.join(base, _CLASS_COUNTS),
            loader=root_env_loader(
                name, load, root=root, env_var=OID_ROOT_ENV, json_file=json_file,
                contents=f"Open Images root (holding {relative_json}, {_HIERARCHY}, {image_dir}/)",
                register_call="efl.data.register_oid_challenge_2019_efl(root)",
                json_hint="; write it with tools/convert_openimages.py",
            ),
        )
