"""What an evaluation says about its ground truth (efl.engine.ground_truth): the evaluator scores
against the annotation file as written, the dataset checks clip or drop some of its boxes for the
model; the evaluation counts both, and refuses a file with dropped boxes unless asked."""
import json

import pytest
from lvis import LVIS

from efl.data import register_lvis_json
from efl.engine.ground_truth import GroundTruthError, audit_evaluation_ground_truth, describe_audit

from .tiny_lvis import CATEGORIES, IMAGE_SIZE, write_tiny_lvis

HEIGHT, WIDTH = IMAGE_SIZE
# Boxes added to image 1, by kind: what the checks do with them is known by construction.
CLIPPED = [[WIDTH - 10, 5, 20, 10]]  # sticks out on the right: clipped to [54, 5, 10, 10]
DROPPED = [[WIDTH + 5, 5, 10, 10],  # entirely right of the image
           [10, 10, 0, 12]]  # zero width


def add_boxes(json_file, boxes):
    """Append ``boxes`` to image 1 of an LVIS json; returns their annotation ids."""
    with open(json_file) as f:
        data = json.load(f)
    ids = []
    for bbox in boxes:
        ids.append(max(a["id"] for a in data["annotations"]) + 1)
        data["annotations"].append({"id": ids[-1], "image_id": 1, "category_id": 1, "bbox": bbox,
                                    "area": bbox[2] * bbox[3], "segmentation": [[0, 0, 1, 0, 1, 1]]})
    with open(json_file, "w") as f:
        json.dump(data, f)
    return ids


def register(name, root):
    register_lvis_json(name, json_file=str(root / "annotations.json"), image_root=str(root),
                       metadata={"thing_classes": [c[0] for c in CATEGORIES],
                                 "class_frequency": [c[1] for c in CATEGORIES]})
    return name


@pytest.fixture
def tiny_set(tmp_path):
    write_tiny_lvis(str(tmp_path))
    return tmp_path


def test_a_clean_set_reports_every_box_and_no_change(tiny_set):
    (report,) = audit_evaluation_ground_truth(register("gt_clean", tiny_set))
    assert (report["boxes"], report["clipped"], report["dropped"]) == (6, 0, 0)


def test_clipped_boxes_are_counted_and_stay_in_the_evaluated_ground_truth(tiny_set):
    add_boxes(tiny_set / "annotations.json", CLIPPED)
    (report,) = audit_evaluation_ground_truth(register("gt_clipped", tiny_set))
    assert (report["boxes"], report["clipped"], report["dropped"]) == (7, 1, 0)
    # the official API, which the evaluator uses, reads all 7 as written
    assert len(LVIS(str(tiny_set / "annotations.json")).anns) == 7
    line = describe_audit(report)
    assert "clipped 1 of them" in line and "stay in the evaluated ground truth" in line


def test_boxes_the_checks_drop_are_an_error_naming_file_image_annotation_and_option(tiny_set):
    ids = add_boxes(tiny_set / "annotations.json", CLIPPED + DROPPED)
    with pytest.raises(GroundTruthError) as info:
        audit_evaluation_ground_truth(register("gt_dropped", tiny_set))
    message = str(info.value)
    assert str(tiny_set / "annotations.json") in message
    assert f"2 of the 9 boxes of the evaluation set 'gt_dropped'" in message
    assert f"image 1, annotation {ids[1]}, bbox {DROPPED[0]}" in message
    assert "train.eval_invalid_boxes=report" in message


def test_report_mode_evaluates_anyway_and_counts_what_was_dropped(tiny_set):
    ids = add_boxes(tiny_set / "annotations.json", CLIPPED + DROPPED)
    (report,) = audit_evaluation_ground_truth(register("gt_report", tiny_set), invalid_boxes="report")
    assert (report["boxes"], report["clipped"], report["dropped"]) == (9, 1, 2)
    assert [example[1] for example in report["dropped_examples"]] == ids[1:]
    assert "and dropped 2 (zero area or outside the image)" in describe_audit(report)
    assert len(LVIS(str(tiny_set / "annotations.json")).anns) == 9


def test_an_unknown_policy_is_an_error(tiny_set):
    with pytest.raises(ValueError, match="train.eval_invalid_boxes must be one of"):
        audit_evaluation_ground_truth(register("gt_policy", tiny_set), invalid_boxes="ignore")
