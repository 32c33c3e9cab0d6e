"""Detectron2 registration of the synthetic long-tailed set (`efl.data.synthetic`).

Registered on `import efl.data`:

| dataset | preset | classes (r/c/f) | images |
|---|---|---|---|
| `synthetic_lt_train`, `synthetic_lt_val` | default | 48 (14/18/16) | 800 / 300 |
| `synthetic_fg_train`, `synthetic_fg_val` | fine_grained (LVIS-like taxonomy) | 48 (14/18/16) | 800 / 300 |
| `synthetic_lt_tiny_train`, `synthetic_lt_tiny_val` | tiny (tests) | 12 (4/8/0) | 40 / 20 |

The images and json are generated on first load into `$EFL_DATASETS` (default
`~/.cache/efl/datasets`), never downloaded. The metadata is complete at registration (the class
image counts are exact by construction), so a model can read `class_image_count` before anything
is generated; the json exists once a split of the set has been loaded.
"""
import os

from detectron2.data import MetadataCatalog

from .annotation_json import read_annotation_json
from .lvis import load_lvis_json_checked, register_lvis_json
from .paths import default_cache_root
from .synthetic import PRESETS, category_metadata, ensure_generated

__all__ = ["register_synthetic_lt", "register_synthetic_lt_dir", "SPLITS"]

SPLITS = ("train", "val")


def _metadata(categories):
    return {
        "thing_classes": [c["name"] for c in categories],
        "class_frequency": [c["frequency"] for c in categories],
        "class_image_count": [{"id": c["id"], "image_count": c["image_count"]} for c in categories],
    }


def _json_file(root, split):
    return os.path.join(root, "annotations", f"synthetic_lt_{split}.json")


def _categories(json_file):
    return sorted(read_annotation_json(json_file)["categories"], key=lambda c: c["id"])


def _loader(name, spec, cache_root, split):
    def load():
        root = ensure_generated(spec, cache_root)
        dataset_dicts = load_lvis_json_checked(_json_file(root, split), root, name)
        _check_categories(name, _json_file(root, split))
        return dataset_dicts

    return load


def _check_categories(name, json_file):
    # The registered metadata was computed without generating; the json must agree with it.
    categories = _categories(json_file)
    expected = {k: v for k, v in MetadataCatalog.get(name).as_dict().items() if k in _metadata([])}
    if _metadata(categories) != expected:
        raise RuntimeError(f"{name}: the categories of {json_file} differ from the registered metadata")


def register_synthetic_lt(prefix, spec, *, cache_root=None):
    """
    Register `{prefix}_train` and `{prefix}_val` for the set described by `spec`
    (a `SyntheticLTSpec`), generated on first load under `cache_root` (default: the cache).
    """
    cache_root = cache_root or default_cache_root()
    root = os.path.join(cache_root, spec.cache_key())
    metadata = _metadata(category_metadata(spec))
    for split in SPLITS:
        name = f"{prefix}_{split}"
        register_lvis_json(
            name,
            json_file=_json_file(root, split),
            image_root=root,
            metadata=metadata,
            loader=_loader(name, spec, cache_root, split),
        )


def register_synthetic_lt_dir(prefix, root):
    """Register `{prefix}_train` / `{prefix}_val` for a set written by `python -m efl.data.synthetic`."""
    categories = _categories(_json_file(root, "train"))
    for split in SPLITS:
        register_lvis_json(
            f"{prefix}_{split}", json_file=_json_file(root, split), image_root=root, metadata=_metadata(categories)
        )


def register_all_synthetic_lt(cache_root=None):
    register_synthetic_lt("synthetic_lt", PRESETS["default"], cache_root=cache_root)
    register_synthetic_lt("synthetic_fg", PRESETS["fine_grained"], cache_root=cache_root)
    register_synthetic_lt("synthetic_lt_tiny", PRESETS["tiny"], cache_root=cache_root)
