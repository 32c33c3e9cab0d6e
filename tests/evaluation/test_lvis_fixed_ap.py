"""APfixed (Dave et al. 2021) beside the standard LVIS AP, on hand-built cases where the
300-per-image cap and the per-class cap give different numbers, with both backends."""
import json

import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

from efl.evaluation import LVISEvaluator


def write_gt(path):
    """Two images of 100 x 100, each with one box of class 1 ("r"); class 2 ("f") is a verified
    negative of image 1 and has one box in image 2 (so its false positives count and its AP exists
    only through image 2)."""
    images = [{"id": i, "height": 100, "width": 100, "coco_url": f"http://x/val2017/{i:012d}.jpg",
               "neg_category_ids": [2] if i == 1 else [], "not_exhaustive_category_ids": []}
              for i in (1, 2)]
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "area": 900},
        {"id": 3, "image_id": 2, "category_id": 2, "bbox": [5, 60, 20, 20], "area": 400},
    ]
    for a in annotations:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    categories = [{"id": c, "name": f"class_{c}", "frequency": f, "synset": f"class_{c}.n.01",
                   "synonyms": [f"class_{c}"], "def": "", "image_count": 1, "instance_count": 1}
                  for c, f in ((1, "r"), (2, "f"))]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def detections(rows, size=(100, 100)):
    """rows: (x1, y1, x2, y2, score, contiguous class)."""
    instances = Instances(size)
    instances.pred_boxes = Boxes(torch.tensor([r[:4] for r in rows], dtype=torch.float32))
    instances.scores = torch.tensor([r[4] for r in rows], dtype=torch.float32)
    instances.pred_classes = torch.tensor([r[5] for r in rows], dtype=torch.int64)
    return {"instances": instances}


@pytest.fixture
def dataset(tmp_path):
    write_gt(tmp_path / "gt.json")
    name = "efl_test_fixed_ap"
    DatasetCatalog.register(name, lambda: [])
    MetadataCatalog.get(name).set(json_file=str(tmp_path / "gt.json"), evaluator_type="lvis",
                                  thing_classes=["class_1", "class_2"])
    yield name
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def evaluate(name, outputs, backend, per_class):
    evaluator = LVISEvaluator(name, ("bbox",), distributed=False, backend=backend,
                              fixed_ap_dets_per_class=per_class)
    evaluator.reset()
    for image_id, output in outputs:
        evaluator.process([{"image_id": image_id}], [output])
    return evaluator.evaluate()["bbox"]


@pytest.mark.parametrize("backend", ["lvis", "hotcoco"])
def test_per_image_cap_drops_a_low_scoring_true_positive_that_apfixed_keeps(dataset, backend):
    # image 1: 300 confident class-2 false positives (class 2 is a verified negative there), then
    # the class-1 true positive at a lower score, 301st in the image; image 2: both boxes found.
    fps = [(60 + (i % 10) * 3, 60 + (i // 10) % 10 * 3, 70 + (i % 10) * 3, 70 + (i // 10) % 10 * 3,
            0.9, 1) for i in range(300)]
    outputs = [
        (1, detections(fps + [(10, 10, 40, 40, 0.5, 0)])),
        (2, detections([(50, 50, 80, 80, 0.8, 0), (5, 60, 25, 80, 0.99, 1)])),
    ]
    results = evaluate(dataset, outputs, backend, per_class=10000)
    # standard: class 1 finds 1 of 2 boxes (precision 1 up to recall 0.5): 51 of 101 recall
    # points; class 2: its one box found first, then only false positives: AP 1.
    assert results["APr"] == pytest.approx(100 * 51 / 101, abs=1e-4)
    assert results["APrfixed"] == pytest.approx(100.0)
    assert results["APf"] == pytest.approx(100.0) and results["APffixed"] == pytest.approx(100.0)
    assert results["AP"] == pytest.approx((100 * 51 / 101 + 100) / 2, abs=1e-4)
    assert results["APfixed"] == pytest.approx(100.0)


@pytest.mark.parametrize("backend", ["lvis", "hotcoco"])
def test_per_class_cap_keeps_only_the_highest_scoring_detections_of_a_class(dataset, backend):
    outputs = [
        (1, detections([(10, 10, 40, 40, 0.9, 0)])),
        (2, detections([(50, 50, 80, 80, 0.5, 0), (5, 60, 25, 80, 0.99, 1)])),
    ]
    both = evaluate(dataset, outputs, backend, per_class=2)
    assert both["APr"] == pytest.approx(100.0) and both["APrfixed"] == pytest.approx(100.0)
    # one detection per class: class 1 keeps only its 0.9 detection, recall 0.5
    one = evaluate(dataset, outputs, backend, per_class=1)
    assert one["APr"] == pytest.approx(100.0)  # the standard AP is unchanged
    assert one["APrfixed"] == pytest.approx(100 * 51 / 101, abs=1e-4)


def test_without_the_option_only_the_standard_metrics_are_reported(dataset):
    outputs = [(1, detections([(10, 10, 40, 40, 0.9, 0)])), (2, detections([(5, 60, 25, 80, 0.9, 1)]))]
    results = evaluate(dataset, outputs, "hotcoco", per_class=None)
    assert "APfixed" not in results and "AP" in results
    with pytest.raises(ValueError, match="fixed_ap_dets_per_class"):
        LVISEvaluator(dataset, ("bbox",), distributed=False, fixed_ap_dets_per_class=0)
