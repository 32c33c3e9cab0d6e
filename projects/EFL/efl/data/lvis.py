"""LVIS v1 datasets for the EFL project.

Two ways to point Detectron2 at LVIS v1:

1. Detectron2's built-in `lvis_v1_train` / `lvis_v1_val` stay registered and unchanged:
   `$DETECTRON2_DATASETS/lvis/lvis_v1_{train,val}.json` and images under
   `$DETECTRON2_DATASETS/coco/{train2017,val2017}`.
2. The layout of the reference implementation's users, selected by the environment variable
   `EFL_LVIS_ROOT` and registered as `lvis_v1_train_efl` / `lvis_v1_val_efl`:
   ```
   $EFL_LVIS_ROOT/annotations/lvis_v1_train.json
   $EFL_LVIS_ROOT/annotations/lvis_v1_val.json
   $EFL_LVIS_ROOT/train2017/*.jpg
   $EFL_LVIS_ROOT/val2017/*.jpg
   ```
   (file paths come from each image's `coco_url`, so LVIS val images that come from COCO
   train2017 are found under train2017/, as in Detectron2). These datasets go through
   `load_lvis_json_checked`: bad boxes are dropped or clipped and counted, unknown categories
   and missing image files are errors (see `efl.data.dataset_checks`). A missing json or image
   folder is an error that names the path and the environment variable.

Metadata of every dataset registered here: `thing_classes`, `class_frequency` (LVIS's "r"/"c"/"f"
per class), `json_file`, `image_root`, `evaluator_type="lvis"`, and `class_image_count`
(`[{"id": 1, "image_count": ...}, ...]`, what Detectron2's federated-loss helper reads). For
LVIS v1 the image counts are not shipped with Detectron2 0.6, so `lvis_v1_train_efl` sets them
from the training annotations when it is loaded.
"""
import collections
import logging
import os

from detectron2.data import MetadataCatalog
from detectron2.data.datasets.lvis_v1_categories import LVIS_CATEGORIES as LVIS_V1_CATEGORIES

from ..compat import lvis_image_root
from .annotation_json import dicts_from_annotation_json, read_annotation_json
from .dataset_checks import check_dataset_dicts
from .registration import register_dataset, root_env_loader, root_from_env

__all__ = [
    "LVIS_ROOT_ENV",
    "load_lvis_json_checked",
    "register_lvis_json",
    "register_lvis_v1_efl",
    "class_image_count_from_dicts",
]

logger = logging.getLogger(__name__)

LVIS_ROOT_ENV = "EFL_LVIS_ROOT"
_LVIS_V1_SPLITS = {
    "lvis_v1_train_efl": "annotations/lvis_v1_train.json",
    "lvis_v1_val_efl": "annotations/lvis_v1_val.json",
}
_LVIS_V1_TRAIN_NAMES = ("lvis_v1_train_efl",)


def class_image_count_from_dicts(dataset_dicts, num_classes):
    """`[{"id": k + 1, "image_count": n_k}]`: the number of images that contain each class."""
    counts = collections.Counter()
    for record in dataset_dicts:
        counts.update({ann["category_id"] for ann in record["annotations"]})
    return [{"id": k + 1, "image_count": counts[k]} for k in range(num_classes)]


def load_lvis_json_checked(json_file, image_root, dataset_name, *, check_files=True):
    """
    An LVIS-format (or COCO-format) json read into dataset dicts (`efl.data.annotation_json`: the
    file read once, errors naming the file and field) and checked by `check_dataset_dicts`.

    Args:
        json_file: an LVIS- or COCO-format json.
        image_root: directory with the `<split>/<file>` of each image's `coco_url` (LVIS files) or
            each image's `file_name` (COCO files).
        dataset_name: a registered dataset whose metadata holds `thing_classes`, against which the
            category ids are checked, and `thing_dataset_id_to_contiguous_id` when the file's
            category ids are not LVIS's 1..C.
        check_files: whether every image file must exist.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"{dataset_name}: annotation file {json_file} does not exist")
    meta = MetadataCatalog.get(dataset_name)
    category_id_map = meta.get("thing_dataset_id_to_contiguous_id", None)
    dataset = read_annotation_json(json_file)
    dataset_dicts, orphans = dicts_from_annotation_json(dataset, json_file, image_root,
                                                        category_id_map=category_id_map)
    del dataset
    logger.info("Loaded %d images from %s", len(dataset_dicts), json_file)
    return check_dataset_dicts(
        dataset_dicts, num_classes=len(meta.thing_classes), source=json_file, check_files=check_files,
        file_category_offset=1, orphan_annotations=orphans,
    )


def register_lvis_json(name, *, json_file, image_root, metadata, loader=None):
    """
    Register an LVIS-format json with `load_lvis_json_checked` (or `loader`, a callable that
    returns the dataset dicts) and LVIS evaluation metadata.

    Args:
        name: the dataset name.
        json_file: path of the json (it may not exist yet: it is read when the dataset is loaded).
        image_root: the image root (see `load_lvis_json_checked`).
        metadata: at least `thing_classes`; typically also `class_frequency`, `class_image_count`.
        loader: optional replacement of the default loader.
    """
    register_dataset(
        name, loader or (lambda: load_lvis_json_checked(json_file, image_root, name)),
        json_file=json_file, image_root=lvis_image_root(image_root), evaluator_type="lvis", **metadata,
    )


def _lvis_v1_metadata():
    categories = sorted(LVIS_V1_CATEGORIES, key=lambda c: c["id"])
    return {
        "thing_classes": [c["synonyms"][0] for c in categories],
        "class_frequency": [c["frequency"] for c in categories],
    }


def _lvis_v1_loader(name, root, json_file, is_train):
    def load():
        dataset_dicts = load_lvis_json_checked(json_file, root, name)
        if is_train:
            # Image counts are counted on the training split (LVIS's rule for frequencies).
            meta = MetadataCatalog.get(name)
            if "class_image_count" not in meta.as_dict():
                meta.class_image_count = class_image_count_from_dicts(dataset_dicts, len(meta.thing_classes))
        return dataset_dicts

    return root_env_loader(
        name, load, root=root, env_var=LVIS_ROOT_ENV, json_file=json_file,
        contents="LVIS v1 root (holding annotations/lvis_v1_train.json, annotations/lvis_v1_val.json, "
                 "train2017/, val2017/)",
        register_call="efl.data.register_lvis_v1_efl(root)",
    )


def register_lvis_v1_efl(root=None, *, names=None, train_names=None):
    """
    Register LVIS v1 in the reference layout under `root` (default: `$EFL_LVIS_ROOT`).

    Args:
        root: the LVIS root; None reads the environment variable (unset: loading is an error that
            says to set it).
        names: {dataset name: json path relative to root}; default `lvis_v1_train_efl` and
            `lvis_v1_val_efl`.
        train_names: the names among `names` that are training splits (loading one sets
            `class_image_count` from its annotations); default `lvis_v1_train_efl`.
    """
    root, base = root_from_env(root, LVIS_ROOT_ENV)
    train_names = set(_LVIS_V1_TRAIN_NAMES if train_names is None else train_names)
    for name, relative_json in (names or _LVIS_V1_SPLITS).items():
        json_file = os.path.join(base, relative_json)
        register_lvis_json(
            name,
            json_file=json_file,
            image_root=base,
            metadata=_lvis_v1_metadata(),
            loader=_lvis_v1_loader(name, root, json_file, name in train_names),
        )
