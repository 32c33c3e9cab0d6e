"""LVIS frequency groups (rare / common / frequent) of a dataset's classes.

LVIS labels each category "r" (1-10 training images), "c" (11-100) or "f" (more):
:func:`lvis_frequency` is that rule, for every dataset that counts its own images (the synthetic
sets, custom datasets). APr/APc/APf and the EFL statistics summaries are reported per group, so
every consumer needs the same answer to "which letter has contiguous class k?";
:func:`class_frequency_letters` is that answer.
"""
import json
import os

import torch
from detectron2.data.datasets.lvis_v1_categories import LVIS_CATEGORIES as _LVIS_V1_CATEGORIES

__all__ = [
    "FREQUENCY_GROUPS",
    "LVIS_V1_NUM_CLASSES",
    "class_frequency_groups",
    "class_frequency_letters",
    "lvis_frequency",
]

# LVIS v1's 1203 categories, from Detectron2's table (the one place the count comes from).
LVIS_V1_NUM_CLASSES = len(_LVIS_V1_CATEGORIES)
FREQUENCY_GROUPS = {"r": "rare", "c": "common", "f": "frequent"}
# The metadata field of efl.data's datasets that holds one letter per contiguous class id.
_FREQUENCY_FIELD = "class_frequency"


def lvis_frequency(image_count):
    """LVIS's frequency bucket of a class that appears in `image_count` training images."""
    if image_count <= 10:
        return "r"
    if image_count <= 100:
        return "c"
    return "f"


def _lvis_v1_letters(thing_classes):
    # Detectron2's built-in lvis_v1_* metadata has the names only; its category table has the
    # letters. Contiguous ids follow the sorted LVIS ids there, as in efl.data.lvis.
    categories = sorted(_LVIS_V1_CATEGORIES, key=lambda c: c["id"])
    if [c["synonyms"][0] for c in categories] != list(thing_classes):
        return None
    return [c["frequency"] for c in categories]


def _letters_from_json(json_file):
    with open(json_file) as f:
        categories = json.load(f)["categories"]
    missing = [c["id"] for c in categories if "frequency" not in c]
    if missing:
        raise ValueError(f"{json_file}: categories {missing[:5]} have no 'frequency' field")
    return [c["frequency"] for c in sorted(categories, key=lambda c: c["id"])]


def class_frequency_letters(metadata):
    """The LVIS frequency letter of each contiguous class id of a dataset, and where it came from.

    Looked up, in order, in the metadata field ``class_frequency`` (set by ``efl.data``'s
    registrations), Detectron2's LVIS v1 category table when ``thing_classes`` are its 1203 names,
    and the ``categories`` of the metadata's ``json_file``.

    Args:
        metadata: a ``detectron2.data.Metadata`` (``MetadataCatalog.get(name)``).

    Returns:
        ``(letters, source)``: a list of "r"/"c"/"f" per class and a description of the source
        for error messages; ``(None, None)`` when the metadata leads to no letters.
    """
    fields = metadata.as_dict()
    if fields.get(_FREQUENCY_FIELD) is not None:
        return list(fields[_FREQUENCY_FIELD]), f"metadata field '{_FREQUENCY_FIELD}'"
    thing_classes = fields.get("thing_classes")
    if thing_classes is not None and len(thing_classes) == LVIS_V1_NUM_CLASSES:
        letters = _lvis_v1_letters(thing_classes)
        if letters is not None:
            return letters, "detectron2's LVIS v1 category table"
    json_file = fields.get("json_file")
    if json_file and os.path.isfile(json_file):
        return _letters_from_json(json_file), json_file
    return None, None


def class_frequency_groups(metadata, num_classes):
    """Contiguous class indices of each LVIS frequency group: ``{"rare": (K_r,), "common": ...,
    "frequent": ...}`` (int64; groups without a class are left out), or ``{"all": (C,)}`` when
    the metadata holds no frequency letters.

    Args:
        metadata: a ``detectron2.data.Metadata`` or None.
        num_classes: C, the number of classes the letters must cover (e.g. the loss's).
    """
    letters, source = class_frequency_letters(metadata) if metadata is not None else (None, None)
    if letters is None:
        return {"all": torch.arange(num_classes)}
    if len(letters) != num_classes:
        raise ValueError(f"{source} lists {len(letters)} class frequencies but the loss has "
                         f"{num_classes} classes (dataset '{metadata.name}')")
    unknown = sorted(set(letters) - set(FREQUENCY_GROUPS))
    if unknown:
        raise ValueError(f"{source}: frequency letters must be 'r', 'c' or 'f', got {unknown} "
                         f"(dataset '{metadata.name}')")
    return {
        name: torch.tensor([i for i, x in enumerate(letters) if x == letter], dtype=torch.int64)
        for letter, name in FREQUENCY_GROUPS.items()
        if letter in letters
    }
