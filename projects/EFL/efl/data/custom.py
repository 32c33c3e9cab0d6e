"""Your own LVIS- or COCO-format dataset, registered for training and LVIS evaluation.

    from efl.data import register_lvis_format_dataset
    register_lvis_format_dataset("mine_train", "/data/mine/train.json", "/data/mine/images")
    register_lvis_format_dataset("mine_val", "/data/mine/val.json", "/data/mine/images",
                                 frequency_json="/data/mine/train.json")

or, without code, `configs/efl_improved_baseline_r50_custom.py` with the paths as overrides (its
header has the command); the config calls this function through the OmegaConf resolver
``efl.lvis_format_dataset`` registered here.

What the registration computes (metadata as `efl.data`'s LVIS registrations set it):

- ``thing_classes``: category names in the order of their ids; ``thing_dataset_id_to_contiguous_id``
  maps the file's ids (e.g. COCO's 1..90 with gaps) to 0..K-1 as Detectron2 does, and back for
  the evaluator's results;
- ``class_image_count`` (``[{"id": file id, "image_count": n}]``) and ``class_frequency`` (LVIS's
  "r" 1-10 / "c" 11-100 / "f" more training images): taken from the file's categories when they
  all have them, otherwise counted from the annotations of ``frequency_json`` (the training file;
  default: this file);
- ``json_file``: the file the LVIS evaluator reads. An LVIS-format file with frequencies is used as
  it is. Otherwise (COCO files, or frequencies counted here) an LVIS-format copy is written once
  into ``$EFL_DATASETS/lvis_views/`` (default `~/.cache/efl/datasets`): the frequencies added, and,
  since a COCO file is exhaustively annotated, every category absent from an image listed in the
  image's ``neg_category_ids``; a category with a crowd box in an image is listed in its
  ``not_exhaustive_category_ids`` instead (LVIS then ignores unmatched detections of it there, the
  nearest LVIS has to COCO's crowd regions) and its crowd boxes are left out. ``source_json_file``
  names the original.

Loading goes through the same checks as LVIS (`efl.data.dataset_checks`).
"""
import collections
import hashlib
import json
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from omegaconf import OmegaConf

from .annotation_json import is_lvis_format, read_annotation_json
from .dataset_checks import DatasetCheckError
from .lvis import load_lvis_json_checked, register_lvis_json
from .frequency import lvis_frequency
from .paths import default_cache_root
from ..utils.files import atomic_write

__all__ = ["register_lvis_format_dataset"]

# name -> the arguments it was registered with, so that registering again (the config's resolver
# runs on every access) reads nothing.
_REGISTERED = {}


def register_lvis_format_dataset(name, json_file, image_root, *, frequency_json=None, check_files=True):
    """
    Register an LVIS- or COCO-format json with Detectron2, with the metadata of `efl.data`'s LVIS
    datasets (see the module docstring). Registering the same name with the same arguments again
    does nothing.

    Args:
        name: the dataset name (`dataloader.train.dataset.names`, ...).
        json_file: the annotation file; it is read now (categories, image counts).
        image_root: LVIS files: the folder holding `<split>/<file>` of each image's `coco_url`;
            COCO files: the folder each image's `file_name` is relative to.
        frequency_json: the training annotation file whose image counts set the frequency groups
            (LVIS counts them on the training split); default: `json_file` itself. Use it for
            validation sets.
        check_files: whether loading checks that every image file exists.

    Returns:
        str: ``name``.
    """
    json_file, image_root = os.path.abspath(json_file), os.path.abspath(image_root)
    frequency_json = os.path.abspath(frequency_json) if frequency_json else None
    key = (json_file, image_root, frequency_json, bool(check_files))
    if _REGISTERED.get(name) == key and name in DatasetCatalog.list():
        return name

    dataset = read_annotation_json(json_file)
    categories = sorted(dataset["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i, n in collections.Counter(ids).items() if n > 1)
        raise DatasetCheckError(f"{json_file}: category id {duplicate} appears more than once in 'categories'")
    if not categories:
        raise DatasetCheckError(f"{json_file}: 'categories' is empty")
    image_counts, letters = _image_counts_and_letters(dataset, categories, json_file, frequency_json)

    metadata = {
        "thing_classes": [_category_name(c) for c in categories],
        "thing_dataset_id_to_contiguous_id": {cid: k for k, cid in enumerate(ids)},
        "class_image_count": [{"id": cid, "image_count": n} for cid, n in zip(ids, image_counts)],
        "class_frequency": letters,
        "source_json_file": json_file,
    }
    already_lvis = (frequency_json is None and is_lvis_format(dataset)
                    and all(c.get("frequency") in ("r", "c", "f") for c in categories))
    eval_json = json_file if already_lvis else _write_lvis_view(name, json_file, dataset, ids, letters, image_counts)
    del dataset
    register_lvis_json(
        name, json_file=eval_json, image_root=image_root, metadata=metadata,
        loader=lambda: load_lvis_json_checked(json_file, image_root, name, check_files=check_files),
    )
    _REGISTERED[name] = key
    return name


def _category_name(category):
    if category.get("name"):
        return category["name"]
    if category.get("synonyms"):
        return category["synonyms"][0]
    return str(category["id"])


def _images_per_category(dataset):
    """{category id: number of images with an annotation of it}; annotations of unknown images
    are not counted."""
    image_ids = {image["id"] for image in dataset["images"]}
    pairs = {(a["category_id"], a["image_id"]) for a in dataset["annotations"] if a["image_id"] in image_ids}
    return collections.Counter(category_id for category_id, _ in pairs)


def _image_counts_and_letters(dataset, categories, json_file, frequency_json):
    if frequency_json is None:
        if all("image_count" in c for c in categories):
            counts = [int(c["image_count"]) for c in categories]
        else:
            per_category = _images_per_category(dataset)
            counts = [per_category[c["id"]] for c in categories]
        if all(c.get("frequency") in ("r", "c", "f") for c in categories):
            return counts, [c["frequency"] for c in categories]
        return counts, [lvis_frequency(n) for n in counts]
    train = read_annotation_json(frequency_json)
    per_category = _images_per_category(train)
    counts = [per_category[c["id"]] for c in categories]
    return counts, [lvis_frequency(n) for n in counts]


def _write_lvis_view(name, json_file, dataset, ids, letters, image_counts):
    """An LVIS-format copy of ``dataset`` for the LVIS evaluator; written once per content."""
    stat = os.stat(json_file)
    digest = hashlib.sha1(json.dumps(
        [json_file, stat.st_size, stat.st_mtime_ns, letters, image_counts]).encode()).hexdigest()[:12]
    folder = os.path.join(default_cache_root(), "lvis_views")
    path = os.path.join(folder, f"{name}-{digest}.json")
    if os.path.isfile(path):
        return path

    lvis_format = is_lvis_format(dataset)
    all_ids = set(ids)
    present, crowd = collections.defaultdict(set), collections.defaultdict(set)
    annotations = []
    for ann in dataset["annotations"]:
        if ann.get("iscrowd", 0):
            crowd[ann["image_id"]].add(ann["category_id"])
            continue
        present[ann["image_id"]].add(ann["category_id"])
        x, y, w, h = ann["bbox"]
        annotations.append({**ann, "area": ann.get("area", w * h)})
    images = []
    for image in dataset["images"]:
        image = dict(image)
        if not lvis_format:
            image["not_exhaustive_category_ids"] = sorted(crowd[image["id"]])
            image["neg_category_ids"] = sorted(all_ids - present[image["id"]] - crowd[image["id"]])
        images.append(image)
    categories = [
        {**category, "frequency": letter, "image_count": count}
        for category, letter, count in zip(sorted(dataset["categories"], key=lambda c: c["id"]), letters, image_counts)
    ]
    view = {**dataset, "images": images, "annotations": annotations, "categories": categories}
    os.makedirs(folder, exist_ok=True)
    # a reader sees no file or a complete one
    atomic_write(path, lambda f: f.write(json.dumps(view, separators=(",", ":"))), mode="w")
    return path


def _num_classes(name):
    return len(MetadataCatalog.get(name).thing_classes)


def _resolve_dataset(name, json_file, image_root, frequency_json=None):
    for what, value in (("annotation file", json_file), ("image root", image_root)):
        if not value:
            raise ValueError(f"dataset {name}: no {what} given; set the config's dataset.* paths by "
                             "override (e.g. dataset.train_json=/data/mine/train.json)")
    return register_lvis_format_dataset(name, json_file, image_root, frequency_json=frequency_json or None)


def _rfs_iterations(name, epochs, total_batch_size, repeat_thresh, sqrt, rounding):
    """Iterations of ``epochs`` epochs of the repeat-factor-expanded training set ``name``
    (what train_net loads: images without annotations left out)."""
    from detectron2.data import get_detection_dataset_dicts

    from .repeat_factor import expanded_epoch_length, iterations_for_epochs, repeat_factors_from_category_frequency

    factors = repeat_factors_from_category_frequency(
        get_detection_dataset_dicts(name), repeat_thresh=float(repeat_thresh), sqrt=bool(sqrt), rounding=rounding
    )
    return iterations_for_epochs(expanded_epoch_length(factors), epochs=int(epochs),
                                 total_batch_size=int(total_batch_size))


# A config can so take its dataset paths as overrides and still hand plain names and numbers to
# Detectron2 and to tools/train_net.py:
# ``${efl.lvis_format_dataset:NAME,JSON,IMAGE_ROOT[,FREQUENCY_JSON]}`` registers and gives NAME;
# ``${efl.num_classes:NAME}`` the class count of a registered dataset;
# ``${efl.rfs_iterations:NAME,EPOCHS,BATCH,THRESH,SQRT,ROUNDING}`` the iterations of EPOCHS epochs
# of its repeat-factor-expanded list (loaded once: the result is cached).
for _name, _resolver, _cache in (("efl.lvis_format_dataset", _resolve_dataset, False),
                                 ("efl.num_classes", _num_classes, False),
                                 ("efl.rfs_iterations", _rfs_iterations, True)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver, use_cache=_cache)
