import json
import os

import numpy as np
import pytest
from PIL import Image

from detectron2.data import DatasetCatalog, MetadataCatalog
from efl.data import LVIS_ROOT_ENV, register_lvis_v1_efl

NAMES = {
    "efl_test_lvis_train": "annotations/lvis_v1_train.json",
    "efl_test_lvis_val": "annotations/lvis_v1_val.json",
}


def _fake_lvis_root(root):
    """Two images with real LVIS v1 category ids (1: aerosol can, 1203: zucchini), one val image
    that comes from COCO train2017 as in LVIS."""
    os.makedirs(os.path.join(root, "annotations"))
    for split, image_ids, folder in (("train", (10, 11), "train2017"), ("val", (20,), "train2017")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        images, annotations = [], []
        for image_id in image_ids:
            name = f"{image_id:012d}.jpg"
            Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(os.path.join(root, folder, name))
            images.append({"id": image_id, "height": 30, "width": 40, "neg_category_ids": [5],
                           "not_exhaustive_category_ids": [],
                           "coco_url": f"http://images.cocodataset.org/{folder}/{name}"})
            for k, category_id in enumerate((1, 1203) if image_id == 10 else (1203,)):
                annotations.append({"id": image_id * 10 + k, "image_id": image_id, "category_id": category_id,
                                    "bbox": [1, 1, 10, 10], "area": 100,
                                    "segmentation": [[1, 1, 11, 1, 11, 11, 1, 11]]})
        categories = [
            {"id": 1, "name": "aerosol_can", "frequency": "c"},
            {"id": 1203, "name": "zucchini", "frequency": "c"},
        ]
        with open(os.path.join(root, "annotations", f"lvis_v1_{split}.json"), "w") as f:
            json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def _cleanup():
    for name in NAMES:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def test_unset_environment_variable_is_an_error_naming_it(monkeypatch):
    monkeypatch.delenv(LVIS_ROOT_ENV, raising=False)
    register_lvis_v1_efl(names=NAMES)
    with pytest.raises(FileNotFoundError, match=LVIS_ROOT_ENV):
        DatasetCatalog.get("efl_test_lvis_train")
    _cleanup()


def test_missing_annotation_file_is_an_error_naming_path_and_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(LVIS_ROOT_ENV, str(tmp_path))
    register_lvis_v1_efl(names=NAMES)
    expected = os.path.join(str(tmp_path), "annotations", "lvis_v1_val.json")
    with pytest.raises(FileNotFoundError, match=f"{expected} does not exist \\({LVIS_ROOT_ENV}="):
        DatasetCatalog.get("efl_test_lvis_val")
    _cleanup()


def test_reference_layout_loads_with_lvis_v1_metadata(monkeypatch, tmp_path):
    root = str(tmp_path)
    _fake_lvis_root(root)
    monkeypatch.setenv(LVIS_ROOT_ENV, root)
    register_lvis_v1_efl(names=NAMES, train_names=["efl_test_lvis_train"])
    meta = MetadataCatalog.get("efl_test_lvis_train")
    assert len(meta.thing_classes) == 1203 and meta.thing_classes[-1] == "zucchini"
    assert meta.class_frequency[0] == "c" and meta.evaluator_type == "lvis"
    assert meta.json_file == os.path.join(root, "annotations", "lvis_v1_train.json")

    train = DatasetCatalog.get("efl_test_lvis_train")
    assert [sorted(a["category_id"] for a in d["annotations"]) for d in train] == [[0, 1202], [1202]]
    assert train[0]["file_name"] == os.path.join(root, "train2017", "000000000010.jpg")
    counts = {c["id"]: c["image_count"] for c in MetadataCatalog.get("efl_test_lvis_train").class_image_count}
    assert len(counts) == 1203 and counts[1] == 1 and counts[1203] == 2 and counts[2] == 0
    val = DatasetCatalog.get("efl_test_lvis_val")
    assert val[0]["file_name"] == os.path.join(root, "train2017", "000000000020.jpg")
    assert val[0]["neg_category_ids"] == [5]
    _cleanup()


def test_detectron2_builtin_lvis_v1_registration_is_untouched():
    import efl.data  # noqa: F401

    assert "lvis_v1_train" in DatasetCatalog.list() and "lvis_v1_train_efl" in DatasetCatalog.list()
    assert MetadataCatalog.get("lvis_v1_val").json_file.endswith(os.path.join("lvis", "lvis_v1_val.json"))
