"""A tiny LVIS-format dataset written by the tests: a few small images with coloured boxes of six
classes, two of each LVIS frequency group (r, c, f)."""
import json
import os

import numpy as np
from PIL import Image

from detectron2.data import DatasetCatalog

from efl.data import register_lvis_json

# (name, frequency letter, RGB colour); LVIS ids are 1..6 in this order.
CATEGORIES = [
    ("red_box", "r", (220, 30, 30)),
    ("green_box", "c", (30, 200, 30)),
    ("blue_box", "f", (30, 30, 220)),
    ("yellow_box", "r", (230, 220, 40)),
    ("cyan_box", "c", (40, 210, 220)),
    ("magenta_box", "f", (210, 40, 210)),
]
# Per image: (category index, x, y, w, h). Every class appears, so every group has an AP.
LAYOUTS = [
    [(0, 4, 6, 22, 20), (1, 34, 4, 24, 26), (2, 10, 36, 28, 22)],
    [(3, 6, 8, 26, 22), (4, 36, 30, 22, 26), (5, 4, 38, 24, 20)],
]
IMAGE_SIZE = (64, 64)  # (height, width)


def write_tiny_lvis(root):
    """Write ``root/train2017/*.jpg`` and ``root/annotations.json``; return the json path."""
    os.makedirs(os.path.join(root, "train2017"), exist_ok=True)
    height, width = IMAGE_SIZE
    images, annotations = [], []
    for image_id, layout in enumerate(LAYOUTS, start=1):
        pixels = np.full((height, width, 3), 110, dtype=np.uint8)
        for k, x, y, w, h in layout:
            pixels[y:y + h, x:x + w] = CATEGORIES[k][2]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": k + 1,
                "bbox": [x, y, w, h], "area": w * h,
                "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            })
        file_name = f"{image_id:012d}.png"
        Image.fromarray(pixels).save(os.path.join(root, "train2017", file_name))
        images.append({
            "id": image_id, "height": height, "width": width,
            "coco_url": f"http://images.cocodataset.org/train2017/{file_name}",
            "neg_category_ids": [], "not_exhaustive_category_ids": [],
        })
    categories = [
        {"id": i + 1, "name": name, "synonyms": [name], "synset": f"{name}.n.01", "def": name,
         "frequency": letter,
         "image_count": sum(any(a[0] == i for a in lay) for lay in LAYOUTS),
         "instance_count": sum(a[0] == i for lay in LAYOUTS for a in lay)}
        for i, (name, letter, _) in enumerate(CATEGORIES)
    ]
    json_file = os.path.join(root, "annotations.json")
    with open(json_file, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories,
                   "info": {}, "licenses": []}, f)
    return json_file


def register_tiny_lvis(name, root):
    """Register ``name`` (once per process) with the project's LVIS-format registration, whose
    metadata carries the per-class frequency letters (``class_frequency``)."""
    if name not in DatasetCatalog.list():
        register_lvis_json(
            name, json_file=os.path.join(root, "annotations.json"), image_root=root,
            metadata={"thing_classes": [c[0] for c in CATEGORIES],
                      "class_frequency": [c[1] for c in CATEGORIES]},
        )
    return name
