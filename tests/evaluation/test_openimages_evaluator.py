"""efl.evaluation.OpenImagesEvaluator inside Detectron2: `inference_on_dataset` with a stub model
that returns the hand-built fixture's predictions gives the hand-computed numbers (see
tests/data/test_openimages_data.py), in one process and gathered from two."""
import json
import os

import pytest
import torch

from detectron2.evaluation import inference_on_dataset
from detectron2.structures import Boxes, Instances

from efl.data import register_oid_challenge_2019_efl
from efl.evaluation import OpenImagesEvaluator
from tests.data.test_openimages_data import (
    CLASSES,
    FIXTURE_EXPECTED,
    FIXTURE_PREDICTIONS,
    SIZES,
    write_oid_fixture,
    write_oid_root,
)


class FixtureModel(torch.nn.Module):
    """Returns, for each input image, the fixture's predictions of that image in pixels."""

    def forward(self, inputs):
        index = {mid: k for k, (mid, _) in enumerate(CLASSES)}
        outputs = []
        for inp in inputs:
            w, h = SIZES[inp["image_id"]]
            rows = [p for p in FIXTURE_PREDICTIONS if p[0] == inp["image_id"]]
            instances = Instances((h, w))
            instances.pred_boxes = Boxes(torch.tensor(
                [[x0 * w, y0 * h, x1 * w, y1 * h] for _, _, _, x0, x1, y0, y1 in rows], dtype=torch.float32
            ).reshape(-1, 4))
            instances.scores = torch.tensor([p[2] for p in rows], dtype=torch.float32)
            instances.pred_classes = torch.tensor([index[p[1]] for p in rows], dtype=torch.int64)
            outputs.append({"instances": instances})
        return outputs


def assert_fixture_numbers(bbox):
    """The evaluator's dict is in percent."""
    for key in ("mAP", "mAP0", "mAP1", "mAP2", "mAP3", "mAP4"):
        assert bbox[key] == pytest.approx(100 * FIXTURE_EXPECTED[key], abs=1e-9), key
    assert set(bbox) == {"mAP", "mAP0", "mAP1", "mAP2", "mAP3", "mAP4"}


@pytest.fixture
def oid_root(tmp_path):
    root = str(tmp_path / "root")
    write_oid_root(root, write_oid_fixture(str(tmp_path / "files")))
    register_oid_challenge_2019_efl(root)
    yield root
    register_oid_challenge_2019_efl()


def test_evaluator_through_inference_on_dataset_gives_the_hand_computed_numbers(oid_root, tmp_path):
    # the model's float32 scores keep the fixture's ranks, and its boxes are whole pixels
    data_loader = [[{"image_id": image_id}] for image_id in SIZES]
    out = str(tmp_path / "eval")
    evaluator = OpenImagesEvaluator("oid_challenge_2019_val_efl", distributed=True, output_dir=out)
    results = inference_on_dataset(FixtureModel(), data_loader, evaluator)
    assert_fixture_numbers(results["bbox"])
    with open(os.path.join(out, "metrics.json")) as f:
        assert json.load(f)["mAP"] == pytest.approx(FIXTURE_EXPECTED["mAP"])
    with open(os.path.join(out, "per_class_ap.csv")) as f:
        lines = f.read().splitlines()
    assert lines[0] == "LabelName,DisplayName,AP"
    assert lines[5] == '/m/0robodog,"Robot dog, toy",1.0' and lines[6] == "/m/07j7r,Tree,nan"


def test_evaluator_without_counts_reports_map_only_and_without_hierarchy_is_an_error(oid_root, tmp_path):
    os.remove(os.path.join(oid_root, "annotations", "openimages_challenge_2019_train_class_counts.csv"))
    evaluator = OpenImagesEvaluator("oid_challenge_2019_val_efl")
    results = inference_on_dataset(FixtureModel(), [[{"image_id": i}] for i in SIZES], evaluator)
    assert list(results["bbox"]) == ["mAP"]
    assert results["bbox"]["mAP"] == pytest.approx(100 * FIXTURE_EXPECTED["mAP"])
    os.remove(os.path.join(oid_root, "annotations", "challenge-2019-label500-hierarchy.json"))
    with pytest.raises(FileNotFoundError, match="label hierarchy .*challenge-2019-label500-hierarchy.json"):
        OpenImagesEvaluator("oid_challenge_2019_val_efl").evaluate()


def test_evaluator_gathers_the_predictions_of_every_process(oid_root, monkeypatch):
    # Two processes, each with part of the images: comm.gather hands rank 0 both lists (what
    # Detectron2's gloo gather returns there), rank 1 gets nothing back and reports nothing.
    import efl.data.openimages.evaluator as module

    ranks = [OpenImagesEvaluator("oid_challenge_2019_val_efl", distributed=True) for _ in range(2)]
    for rank, evaluator in enumerate(ranks):
        evaluator.reset()
        for image_id in list(SIZES)[rank::2]:
            inputs = [{"image_id": image_id}]
            evaluator.process(inputs, FixtureModel()(inputs))
    monkeypatch.setattr(module.comm, "synchronize", lambda: None)
    monkeypatch.setattr(module.comm, "gather", lambda data, dst=0: [ranks[0]._predictions, ranks[1]._predictions])
    monkeypatch.setattr(module.comm, "is_main_process", lambda: True)
    assert_fixture_numbers(ranks[0].evaluate()["bbox"])
    monkeypatch.setattr(module.comm, "gather", lambda data, dst=0: [])
    monkeypatch.setattr(module.comm, "is_main_process", lambda: False)
    assert ranks[1].evaluate() == {}
