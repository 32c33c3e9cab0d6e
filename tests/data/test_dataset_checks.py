"""Bad input in LVIS-format files: every case is either repaired and counted, or an error that
names the image (and annotation) or the path."""
import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from detectron2.data import DatasetCatalog, get_detection_dataset_dicts
from efl.data import DatasetCheckError, register_lvis_json

CLASSES = ["apple", "banana", "cherry"]


def _box_ann(ann_id, image_id, category_id, bbox):
    x, y, w, h = bbox
    polygon = [x, y, x + max(w, 1), y, x + max(w, 1), y + max(h, 1), x, y + max(h, 1)]
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": bbox,
            "area": max(w, 0) * max(h, 0), "segmentation": [polygon]}


def _write_set(root, annotations, *, images=(1, 2, 3), missing=()):
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    image_entries = []
    for image_id in images:
        name = f"{image_id:012d}.jpg"
        if image_id not in missing:
            Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(os.path.join(root, "train", name))
        image_entries.append({"id": image_id, "height": 40, "width": 50, "coco_url": f"http://x.invalid/train/{name}",
                              "neg_category_ids": [], "not_exhaustive_category_ids": []})
    categories = [{"id": k + 1, "name": n, "synonyms": [n], "def": n, "frequency": "r", "image_count": 1,
                   "instance_count": 1} for k, n in enumerate(CLASSES)]
    json_file = os.path.join(root, "train.json")
    with open(json_file, "w") as f:
        json.dump({"images": image_entries, "annotations": annotations, "categories": categories}, f)
    return json_file


def _register(name, root, json_file):
    register_lvis_json(name, json_file=json_file, image_root=root, metadata={"thing_classes": CLASSES})
    return name


def test_degenerate_boxes_are_dropped_or_clipped_and_counted(tmp_path, caplog):
    root = str(tmp_path)
    annotations = [
        _box_ann(1, 1, 1, [5, 5, 10, 10]),  # fine
        _box_ann(2, 1, 2, [5, 5, 0, 10]),  # zero width: dropped
        _box_ann(3, 1, 3, [45, 30, 20, 20]),  # partly outside: clipped to 5 x 10
        _box_ann(4, 2, 1, [60, 50, 5, 5]),  # entirely outside: dropped, image 2 becomes empty
    ]
    name = _register("efl_test_checks_boxes", root, _write_set(root, annotations))
    with caplog.at_level(logging.WARNING, logger="efl.data.dataset_checks"):
        dicts = DatasetCatalog.get(name)
    by_id = {d["image_id"]: d for d in dicts}
    assert [a["bbox"] for a in by_id[1]["annotations"]] == [[5, 5, 10, 10], [45.0, 30.0, 5.0, 10.0]]
    assert [a["category_id"] for a in by_id[1]["annotations"]] == [0, 2]
    assert by_id[2]["annotations"] == [] and by_id[3]["annotations"] == []
    message = caplog.text
    assert "dropped 1 boxes of zero area and 1 boxes outside their image (zero area: e.g. image 1, " \
           "annotation 2, bbox [5, 5, 0, 10]) (outside: e.g. image 2, annotation 4, bbox [60, 50, 5, 5])" \
           in message
    assert "clipped 1 boxes" in message and "2 images have no annotations" in message
    # Training then drops the images left without annotations (detectron2 logs that count).
    assert [d["image_id"] for d in get_detection_dataset_dicts(name)] == [1]
    DatasetCatalog.remove(name)


def test_unknown_category_id_is_an_error_naming_the_image_and_annotation(tmp_path):
    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(77, 3, 9, [5, 5, 10, 10])]
    name = _register("efl_test_checks_category", root, _write_set(root, annotations))
    with pytest.raises(DatasetCheckError, match=r"image 3, annotation 77 has category 8 \(0-based; 9 in the file\)"):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_non_finite_box_is_an_error_naming_the_image_and_annotation(tmp_path):
    root = str(tmp_path)
    annotations = [_box_ann(5, 2, 1, [5, 5, 10, 10])]
    annotations[0]["bbox"] = [5, 5, float("nan"), 10]
    json_file = _write_set(root, annotations)
    name = _register("efl_test_checks_nan", root, json_file)
    with pytest.raises(DatasetCheckError, match=r"image 2, annotation 5 has a malformed bbox"):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_negative_width_is_an_error_naming_file_image_and_annotation_not_a_dropped_box(tmp_path):
    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(6, 2, 1, [20, 5, -10, 10])]
    json_file = _write_set(root, annotations)
    name = _register("efl_test_checks_negative", root, json_file)
    with pytest.raises(DatasetCheckError) as info:
        DatasetCatalog.get(name)
    assert str(info.value) == (f"{json_file}: image 2, annotation 6 has a malformed bbox [20, 5, -10, 10] "
                               "(field 'bbox' of annotations[1]): its width is negative")
    DatasetCatalog.remove(name)


def test_dicts_of_other_loaders_with_a_negative_height_are_an_error_naming_image_and_annotation():
    from efl.data.dataset_checks import check_dataset_dicts

    dicts = [{"image_id": 4, "file_name": "x.jpg", "height": 40, "width": 50,
              "annotations": [{"id": 9, "bbox": [1, 2, 3, -4], "category_id": 0}]}]
    with pytest.raises(DatasetCheckError, match=r"^synthetic: image 4, annotation 9 has a malformed bbox "
                                                r"\[1, 2, 3, -4\]: its height is negative$"):
        check_dataset_dicts(dicts, num_classes=1, source="synthetic", check_files=False)


def test_missing_image_file_is_an_error_naming_the_path_and_image(tmp_path):
    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(2, 2, 1, [5, 5, 10, 10])]
    name = _register("efl_test_checks_missing", root, _write_set(root, annotations, missing=(2,)))
    expected = os.path.join(root, "train", "000000000002.jpg")
    with pytest.raises(DatasetCheckError, match=r"1 image file\(s\) missing, e.g. image 2 at " + expected):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_missing_json_is_an_error_naming_the_path(tmp_path):
    json_file = str(tmp_path / "nowhere.json")
    name = _register("efl_test_checks_nojson", str(tmp_path), json_file)
    with pytest.raises(FileNotFoundError, match=json_file):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_truncated_json_is_an_error_naming_the_file(tmp_path):
    root = str(tmp_path)
    json_file = _write_set(root, [_box_ann(1, 1, 1, [5, 5, 10, 10])])
    with open(json_file) as f:
        text = f.read()
    with open(json_file, "w") as f:
        f.write(text[: len(text) // 2])
    name = _register("efl_test_checks_truncated", root, json_file)
    with pytest.raises(DatasetCheckError, match=f"{json_file}: not valid JSON .*truncated"):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


@pytest.mark.parametrize("field", ["categories", "images", "annotations"])
def test_json_without_a_top_level_list_is_an_error_naming_file_and_field(tmp_path, field):
    root = str(tmp_path)
    json_file = _write_set(root, [_box_ann(1, 1, 1, [5, 5, 10, 10])])
    with open(json_file) as f:
        content = json.load(f)
    del content[field]
    with open(json_file, "w") as f:
        json.dump(content, f)
    name = _register(f"efl_test_checks_no_{field}", root, json_file)
    with pytest.raises(DatasetCheckError, match=f"{json_file}: no '{field}' field"):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_annotation_without_a_required_key_is_an_error_naming_it(tmp_path):
    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(7, 2, 1, [5, 5, 10, 10])]
    del annotations[1]["bbox"]
    name = _register("efl_test_checks_no_bbox", root, _write_set(root, annotations))
    with pytest.raises(DatasetCheckError, match=r"annotations\[1\] \(id 7\) has no 'bbox' field"):
        DatasetCatalog.get(name)
    DatasetCatalog.remove(name)


def test_annotations_of_unknown_images_are_dropped_and_counted(tmp_path, caplog):
    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(8, 99, 2, [5, 5, 10, 10]),
                   _box_ann(9, 98, 2, [5, 5, 10, 10])]
    name = _register("efl_test_checks_orphans", root, _write_set(root, annotations))
    with caplog.at_level(logging.WARNING, logger="efl.data.dataset_checks"):
        dicts = DatasetCatalog.get(name)
    assert sum(len(d["annotations"]) for d in dicts) == 1
    assert "dropped 2 annotations whose image id is not among the file's images (e.g. annotation 8 of image 99)" \
        in caplog.text
    DatasetCatalog.remove(name)


def test_loader_gives_detectron2s_lvis_dicts_for_a_valid_file(tmp_path):
    from detectron2.data.datasets.lvis import load_lvis_json

    from efl.compat import lvis_image_root

    root = str(tmp_path)
    annotations = [_box_ann(1, 1, 1, [5, 5, 10, 10]), _box_ann(2, 1, 3, [1, 2, 3, 4]), _box_ann(3, 3, 2, [0, 0, 9, 9])]
    json_file = _write_set(root, annotations)
    name = _register("efl_test_checks_like_d2", root, json_file)
    ours = DatasetCatalog.get(name)
    expected = load_lvis_json(json_file, lvis_image_root(root), None)
    assert ours == expected
    DatasetCatalog.remove(name)
