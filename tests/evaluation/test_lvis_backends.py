"""efl.evaluation.LVISEvaluator: the hotcoco backend gives the official lvis-api numbers."""
import json
import logging
import re
import sys

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

from efl.evaluation import LVISEvaluator, lvis_backend

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")


def write_federated_lvis(path, *, num_images=24, num_categories=9, seed=0):
    """Random LVIS-style ground truth with r/c/f classes, negative and not-exhaustive labels."""
    rng = np.random.default_rng(seed)
    letters = "rcf" * (num_categories // 3)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        present = rng.choice(num_categories, size=rng.integers(1, 4), replace=False) + 1
        absent = [c for c in range(1, num_categories + 1) if c not in present]
        images.append({
            "id": image_id, "height": 200, "width": 300,
            "coco_url": f"http://images.cocodataset.org/val2017/{image_id:012d}.jpg",
            "neg_category_ids": [int(c) for c in rng.choice(absent, size=2, replace=False)],
            "not_exhaustive_category_ids": [int(present[0])] if image_id % 5 == 0 else [],
        })
        for c in present:
            for _ in range(rng.integers(1, 3)):
                # sizes span small, medium and large areas
                w, h = (float(v) for v in rng.uniform(10, 140, size=2))
                x, y = float(rng.uniform(0, 300 - w)), float(rng.uniform(0, 200 - h))
                annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                    "category_id": int(c), "bbox": [x, y, w, h], "area": w * h,
                                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    categories = [{"id": c, "name": f"class_{c}", "frequency": letters[c - 1],
                   "synset": f"class_{c}.n.01", "synonyms": [f"class_{c}"], "def": "",
                   "image_count": 1, "instance_count": 1} for c in range(1, num_categories + 1)]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return images, annotations, num_categories


def random_detections(images, annotations, num_categories, seed=1):
    """Per image: jittered copies of its boxes (some with a wrong class) plus random boxes."""
    rng = np.random.default_rng(seed)
    outputs = []
    for image in images:
        boxes, scores, classes = [], [], []
        for a in (a for a in annotations if a["image_id"] == image["id"]):
            x, y, w, h = a["bbox"]
            jitter = rng.normal(0, 0.1, size=4) * [w, h, w, h]
            boxes.append([x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]])
            scores.append(rng.uniform(0.2, 1.0))
            wrong = rng.uniform() < 0.2
            classes.append(int(rng.integers(num_categories)) if wrong else a["category_id"] - 1)
        for _ in range(6):
            x, y = rng.uniform(0, 250), rng.uniform(0, 150)
            boxes.append([x, y, x + rng.uniform(5, 50), y + rng.uniform(5, 50)])
            scores.append(rng.uniform(0.0, 0.6))
            classes.append(int(rng.integers(num_categories)))
        instances = Instances((image["height"], image["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        instances.scores = torch.tensor(scores, dtype=torch.float32)
        instances.pred_classes = torch.tensor(classes, dtype=torch.int64)
        outputs.append(({"image_id": image["id"]}, {"instances": instances}))
    return outputs


def register(name, json_file, num_categories):
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(json_file=str(json_file), evaluator_type="lvis",
                                      thing_classes=[f"class_{c}" for c in range(1, num_categories + 1)])
    return name


def evaluate(dataset_name, outputs, backend):
    evaluator = LVISEvaluator(dataset_name, ("bbox",), distributed=False, backend=backend)
    evaluator.reset()
    for inputs, output in outputs:
        evaluator.process([inputs], [output])
    return evaluator.evaluate()["bbox"]


def test_hotcoco_backend_equals_official_lvis_api(tmp_path):
    images, annotations, num_categories = write_federated_lvis(tmp_path / "gt.json")
    name = register("efl_test_federated_lvis", tmp_path / "gt.json", num_categories)
    outputs = random_detections(images, annotations, num_categories)
    official = evaluate(name, outputs, "lvis")
    fast = evaluate(name, outputs, "hotcoco")
    assert 0 < official["AP"] < 100  # a non-trivial case
    for metric in METRICS:
        assert fast[metric] == pytest.approx(official[metric], abs=1e-6), metric


def test_perfect_detections_give_ap_100_with_both_backends(tmp_path):
    images, annotations, num_categories = write_federated_lvis(tmp_path / "gt.json", seed=3)
    name = register("efl_test_federated_lvis_perfect", tmp_path / "gt.json", num_categories)
    outputs = []
    for image in images:
        mine = [a for a in annotations if a["image_id"] == image["id"]]
        instances = Instances((image["height"], image["width"]))
        instances.pred_boxes = Boxes(torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                    a["bbox"][1] + a["bbox"][3]] for a in mine]))
        instances.scores = torch.linspace(1.0, 0.5, len(mine))
        instances.pred_classes = torch.tensor([a["category_id"] - 1 for a in mine])
        outputs.append(({"image_id": image["id"]}, {"instances": instances}))
    for backend in ("lvis", "hotcoco"):
        results = evaluate(name, outputs, backend)
        for metric in ("AP", "APr", "APc", "APf"):
            assert results[metric] == pytest.approx(100.0), (backend, metric)


def test_backend_swap_is_undone_and_unknown_backends_are_refused():
    import lvis

    with lvis_backend("hotcoco"):
        from lvis import LVISEval

        assert LVISEval.__module__.startswith("hotcoco")
    assert sys.modules["lvis"] is lvis
    with pytest.raises(ValueError, match="hotcoco"):
        with lvis_backend("fast"):
            pass


@pytest.mark.parametrize("backend", ["lvis", "hotcoco"])
def test_an_evaluation_lists_its_ap_once(tmp_path, capfd, caplog, backend):
    """The library's own summary (AP as fractions, -1.000 for an absent group) is not printed
    before Detectron2's table of the same metrics."""
    images, annotations, num_categories = write_federated_lvis(tmp_path / "gt.json", seed=5)
    name = register(f"efl_test_federated_lvis_print_{backend}", tmp_path / "gt.json", num_categories)
    with caplog.at_level(logging.INFO):
        evaluate(name, random_detections(images, annotations, num_categories), backend)
    printed = "".join(capfd.readouterr()) + caplog.text
    assert "Evaluation results for bbox" in printed  # Detectron2's table
    # the lvis-api's summary ("Average Precision (AP) @[ IoU=0.50:0.95 ...") and hotcoco's, which
    # its Rust run() prints to the process's stdout ("      AP50 = 0.698")
    assert "Average Precision" not in printed and "IoU=0.50:0.95" not in printed
    assert re.search(r"AP50 = ", printed) is None, printed


@pytest.mark.parametrize("backend", ["lvis", "hotcoco"])
def test_the_table_says_absent_for_a_group_the_set_lacks(tmp_path, caplog, backend):
    images, annotations, num_categories = write_federated_lvis(tmp_path / "gt.json", seed=7)
    with open(tmp_path / "gt.json") as f:
        gt = json.load(f)
    for category in gt["categories"]:  # no rare class: APr cannot be measured
        category["frequency"] = "c" if category["frequency"] == "r" else category["frequency"]
    with open(tmp_path / "gt.json", "w") as f:
        json.dump(gt, f)
    name = register(f"efl_test_federated_lvis_no_rare_{backend}", tmp_path / "gt.json", num_categories)
    with caplog.at_level(logging.INFO):
        results = evaluate(name, random_detections(images, annotations, num_categories), backend)
    assert results["APr"] == -100  # Detectron2's value, which final_results.json stores as null
    table = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Evaluation results for"))
    header, _, values = table.splitlines()[1:4]
    cells = dict(zip((c.strip() for c in header.split("|")), (c.strip() for c in values.split("|"))))
    assert cells["APr"] == "absent" and float(cells["AP"]) == pytest.approx(results["AP"], abs=1e-3)
    assert "-100" not in table
    assert not logging.getLogger("detectron2.evaluation.lvis_evaluation").filters  # only during evaluation
