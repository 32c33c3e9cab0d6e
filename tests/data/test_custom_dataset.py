"""Own LVIS- or COCO-format datasets: register_lvis_format_dataset and the custom config."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances
from efl.data import DatasetCheckError, register_lvis_format_dataset
from efl.evaluation import LVISEvaluator

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "efl_improved_baseline_r50_custom.py")
# COCO-style ids with gaps; "cat" is in 11 training images (LVIS "c"), the others in fewer ("r").
CATEGORIES = [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 17, "name": "cat"}]


def write_coco(root, split, num_images, *, first_image_id=1, extra_annotations=()):
    """A COCO-format file: images by file_name under root/images, one crowd box, no LVIS fields."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        image_id = first_image_id + i
        name = f"{split}_{image_id}.jpg"
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(os.path.join(root, "images", name))
        images.append({"id": image_id, "file_name": name, "height": 40, "width": 60})
        labels = [17] + ([1] if i < 3 else []) + ([90] if i == 0 else [])
        for k, category_id in enumerate(labels):
            annotations.append({"id": 100 * image_id + k, "image_id": image_id, "category_id": category_id,
                                "bbox": [5 + 10 * k, 5, 8, 12], "area": 96, "iscrowd": 0})
    annotations.append({"id": 99999, "image_id": first_image_id, "category_id": 1, "bbox": [40, 20, 15, 15],
                        "area": 225, "iscrowd": 1})
    annotations += list(extra_annotations)
    json_file = os.path.join(root, f"{split}.json")
    with open(json_file, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": CATEGORIES}, f)
    return json_file


@pytest.fixture
def coco_set(tmp_path, monkeypatch):
    monkeypatch.setenv("EFL_DATASETS", str(tmp_path / "cache"))
    root = str(tmp_path)
    train = write_coco(root, "train", 11)
    val = write_coco(root, "val", 4, first_image_id=1000)
    yield root, train, val
    for name in ("efl_test_custom_train", "efl_test_custom_val", "custom_train", "custom_val"):
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_coco_file_with_id_gaps_is_mapped_to_contiguous_ids_as_detectron2_does(coco_set):
    root, train, _ = coco_set
    assert register_lvis_format_dataset("efl_test_custom_train", train, os.path.join(root, "images")) \
        == "efl_test_custom_train"
    meta = MetadataCatalog.get("efl_test_custom_train")
    assert meta.thing_classes == ["person", "cat", "toothbrush"]  # in the order of the ids 1, 17, 90
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 17: 1, 90: 2}
    assert meta.evaluator_type == "lvis" and meta.source_json_file == train

    dicts = DatasetCatalog.get("efl_test_custom_train")
    first = dicts[0]
    assert first["file_name"] == os.path.join(root, "images", "train_1.jpg")
    assert [(a["category_id"], a.get("iscrowd", 0)) for a in first["annotations"]] == [(1, 0), (0, 0), (2, 0), (0, 1)]


def test_image_counts_and_frequency_groups_are_counted_from_the_annotations(coco_set):
    root, train, val = coco_set
    register_lvis_format_dataset("efl_test_custom_train", train, os.path.join(root, "images"))
    meta = MetadataCatalog.get("efl_test_custom_train")
    # person: images 1-3 (the crowd box is in image 1 too), cat: all 11, toothbrush: image 1.
    assert meta.class_image_count == [{"id": 1, "image_count": 3}, {"id": 17, "image_count": 11},
                                      {"id": 90, "image_count": 1}]
    assert meta.class_frequency == ["r", "c", "r"]
    # The validation set takes the training file's counts (LVIS counts frequencies on train).
    register_lvis_format_dataset("efl_test_custom_val", val, os.path.join(root, "images"), frequency_json=train)
    val_meta = MetadataCatalog.get("efl_test_custom_val")
    assert val_meta.class_frequency == ["r", "c", "r"] and val_meta.class_image_count == meta.class_image_count


def test_lvis_file_with_frequencies_is_evaluated_as_it_is(tmp_path, monkeypatch):
    monkeypatch.setenv("EFL_DATASETS", str(tmp_path / "cache"))
    os.makedirs(tmp_path / "train2017")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "train2017" / "a.jpg")
    categories = [{"id": 1, "name": "x", "frequency": "f", "image_count": 500},
                  {"id": 2, "name": "y", "frequency": "c", "image_count": 50}]
    content = {"images": [{"id": 7, "height": 30, "width": 30, "coco_url": "http://h.invalid/train2017/a.jpg",
                           "neg_category_ids": [1], "not_exhaustive_category_ids": []}],
               "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [1, 1, 5, 5], "area": 25}],
               "categories": categories}
    json_file = str(tmp_path / "lvis.json")
    with open(json_file, "w") as f:
        json.dump(content, f)
    register_lvis_format_dataset("efl_test_custom_train", json_file, str(tmp_path))
    meta = MetadataCatalog.get("efl_test_custom_train")
    assert meta.json_file == json_file and meta.class_frequency == ["f", "c"]
    assert meta.class_image_count == [{"id": 1, "image_count": 500}, {"id": 2, "image_count": 50}]
    (record,) = DatasetCatalog.get("efl_test_custom_train")
    assert record["file_name"] == str(tmp_path / "train2017" / "a.jpg") and record["neg_category_ids"] == [1]
    DatasetCatalog.remove("efl_test_custom_train")
    MetadataCatalog.remove("efl_test_custom_train")


def test_annotation_of_a_category_the_file_does_not_list_is_an_error_naming_it(coco_set):
    root, _, _ = coco_set
    bad = {"id": 5, "image_id": 1, "category_id": 33, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}
    json_file = write_coco(root, "bad", 2, extra_annotations=[bad])
    register_lvis_format_dataset("efl_test_custom_train", json_file, os.path.join(root, "images"))
    with pytest.raises(DatasetCheckError, match=r"image 1, annotation 5 has category 33, which is not among"):
        DatasetCatalog.get("efl_test_custom_train")


def evaluate_ground_truth_as_detections(name, output_dir, *, false_positive_in=None):
    evaluator = LVISEvaluator(name, tasks=("bbox",), distributed=False, output_dir=output_dir,
                              max_dets_per_image=300, backend="lvis")
    evaluator.reset()
    for record in DatasetCatalog.get(name):
        anns = [a for a in record["annotations"] if not a.get("iscrowd", 0)]
        boxes = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in anns]
        classes, scores = [a["category_id"] for a in anns], [1.0] * len(anns)
        if record["image_id"] == false_positive_in:  # a confident toothbrush where there is none
            boxes, classes, scores = boxes + [[30, 20, 50, 35]], classes + [2], scores + [2.0]
        instances = Instances((record["height"], record["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        instances.scores = torch.tensor(scores)
        instances.pred_classes = torch.tensor(classes)
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    return evaluator.evaluate()["bbox"]


def test_ground_truth_as_detections_scores_ap_100_with_file_category_ids(coco_set, tmp_path):
    # The evaluator reads the LVIS-format view and maps contiguous ids back to the file's ids.
    root, train, val = coco_set
    register_lvis_format_dataset("efl_test_custom_val", val, os.path.join(root, "images"), frequency_json=train)
    results = evaluate_ground_truth_as_detections("efl_test_custom_val", str(tmp_path / "eval"))
    assert results["AP"] == pytest.approx(100.0) and results["APc"] == pytest.approx(100.0)
    with open(tmp_path / "eval" / "lvis_instances_results.json") as f:
        assert {r["category_id"] for r in json.load(f)} == {1, 17, 90}


def test_coco_categories_absent_from_an_image_are_verified_negatives(coco_set, tmp_path):
    # COCO is exhaustively annotated: a detection of a class absent from the image is a false
    # positive (LVIS would ignore it if the class were not in the image's neg_category_ids).
    root, train, val = coco_set
    register_lvis_format_dataset("efl_test_custom_val", val, os.path.join(root, "images"), frequency_json=train)
    results = evaluate_ground_truth_as_detections("efl_test_custom_val", str(tmp_path / "eval"),
                                                  false_positive_in=1001)
    assert results["APc"] == pytest.approx(100.0) and results["APr"] < 100.0


def test_custom_config_takes_the_paths_as_overrides(coco_set):
    from efl.engine.overrides import apply_overrides

    root, train, val = coco_set
    images = os.path.join(root, "images")
    cfg = LazyConfig.load(CONFIG)
    with pytest.raises(Exception, match="dataset custom_train: no annotation file given"):
        str(cfg.dataloader.train.dataset.names)
    # The project's override check (tools/train_net.py) accepts the keys.
    cfg = apply_overrides(cfg, [f"dataset.train_json={train}", f"dataset.train_images={images}",
                                f"dataset.val_json={val}", f"dataset.val_images={images}",
                                "dataloader.train.total_batch_size=1",
                                "dataloader.train.sampler.repeat_factors.repeat_thresh=0.2"])
    assert cfg.dataloader.train.dataset.names == "custom_train"
    assert cfg.dataloader.test.dataset.names == "custom_val"
    assert cfg.model.num_classes == 3 and cfg.model.head.num_classes == 3
    assert cfg.dataloader.evaluator.dataset_name == "custom_val"
    assert MetadataCatalog.get("custom_val").class_frequency == ["r", "c", "r"]
    # With t = 0.2 only toothbrush (1 of 11 images, f = 0.09) repeats its image:
    # ceil(sqrt(0.2 / 0.09)) = 2, so an epoch is 12 images, at 1 image per iteration 12 iterations.
    assert cfg.train.checkpointer.period == 12 and cfg.train.max_iter == 24 * 12
    test_dicts = instantiate(cfg.dataloader.test.dataset)
    assert len(test_dicts) == 4 and test_dicts[0]["image_id"] == 1000


def test_evaluation_ground_truth_audit_reads_a_coco_format_set(coco_set):
    # tools/train_net.py audits the evaluation set before any run; a COCO file (no coco_url, ids
    # with gaps) must be read with the dataset's own id mapping, not Detectron2's LVIS loader
    from efl.engine.ground_truth import audit_evaluation_ground_truth

    root, train, val = coco_set
    register_lvis_format_dataset("efl_test_custom_val", val, os.path.join(root, "images"),
                                 frequency_json=train)
    (report,) = audit_evaluation_ground_truth("efl_test_custom_val")
    # 4 images: "cat" in each, "person" in 3, "toothbrush" in 1; the crowd box is not ground truth
    assert (report["boxes"], report["clipped"], report["dropped"]) == (8, 0, 0)


@pytest.mark.parametrize("bbox, problem", [
    ([5, 5, -8, 12], "its width is negative"),
    (["5", "5", "8", "12"], "its x is the string '5', not a number"),
    ([5, 5, 8], "expected [x, y, width, height]"),
])
def test_malformed_box_in_a_training_json_is_an_error_naming_file_image_annotation_and_field(
        coco_set, bbox, problem):
    root, _, _ = coco_set
    train = write_coco(root, "bad", 11, extra_annotations=[
        {"id": 777, "image_id": 3, "category_id": 17, "bbox": bbox, "area": 96, "iscrowd": 0}])
    # at registration, which reads the file: before anything computes with the box
    with pytest.raises(DatasetCheckError) as info:
        register_lvis_format_dataset("efl_test_custom_train", train, os.path.join(root, "images"))
    # the file's 15 boxes and its crowd box come first
    assert str(info.value) == (f"{train}: image 3, annotation 777 has a malformed bbox {bbox!r} "
                               f"(field 'bbox' of annotations[16]): {problem}")


def test_a_zero_area_box_in_a_val_json_is_an_error_naming_the_users_file_not_the_cached_copy(coco_set):
    from efl.engine.ground_truth import GroundTruthError, audit_evaluation_ground_truth, describe_audit

    root, train, _ = coco_set
    val = write_coco(root, "val_zero", 4, first_image_id=1000, extra_annotations=[
        {"id": 555, "image_id": 1001, "category_id": 17, "bbox": [5, 5, 0, 12], "area": 0, "iscrowd": 0}])
    register_lvis_format_dataset("efl_test_custom_val", val, os.path.join(root, "images"), frequency_json=train)
    cached = MetadataCatalog.get("efl_test_custom_val").json_file
    assert cached != val  # a COCO file is evaluated through an LVIS-format copy
    with pytest.raises(GroundTruthError) as info:
        audit_evaluation_ground_truth("efl_test_custom_val")
    message = str(info.value)
    assert message.startswith(f"{val}: 1 of the 9 boxes of the evaluation set 'efl_test_custom_val'")
    assert "image 1001, annotation 555, bbox [5, 5, 0, 12]" in message
    assert f"Fix {val}, or set train.eval_invalid_boxes=report" in message
    assert cached not in message and "Fix the file" not in message
    (report,) = audit_evaluation_ground_truth("efl_test_custom_val", invalid_boxes="report")
    assert f"scores against {val} as written (through its LVIS-format copy {cached})" in describe_audit(report)
