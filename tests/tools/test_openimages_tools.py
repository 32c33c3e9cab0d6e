"""tools/convert_openimages.py and tools/evaluate_openimages.py on the hand-built fixture
(tests/data/test_openimages_data.py): CSV -> JSON -> evaluator round trip, every input layout
giving the hand-computed numbers, the output files, and the errors."""
import csv
import json
import math
import os
import runpy
import subprocess
import sys

import pytest

from tests.data.test_openimages_data import CLASSES, FIXTURE_EXPECTED, fixture_coco_results, write_oid_fixture

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERT = os.path.join(REPO, "tools", "convert_openimages.py")
EVALUATE = os.path.join(REPO, "tools", "evaluate_openimages.py")


def tool(path):
    return runpy.run_path(path, run_name="efl_tool")


@pytest.fixture
def files(tmp_path):
    paths = write_oid_fixture(str(tmp_path / "oid"))
    paths["json"] = str(tmp_path / "oid" / "val.json")
    paths["class_counts"] = str(tmp_path / "oid" / "train_class_counts.csv")
    tool(CONVERT)["main"]([
        "--boxes", paths["boxes"], "--image-labels", paths["labels"], "--class-descriptions", paths["classes"],
        "--hierarchy", paths["hierarchy"], "--image-sizes", paths["sizes"], "--output", paths["json"],
        "--class-counts-output", paths["class_counts"],
    ])
    paths["results"] = str(tmp_path / "oid" / "results.json")
    with open(paths["results"], "w") as f:
        json.dump(fixture_coco_results(), f)
    return paths


def read_outputs(out):
    with open(os.path.join(out, "per_class_ap.csv"), newline="") as f:
        rows = list(csv.reader(f))
    with open(os.path.join(out, "metrics.json")) as f:
        return rows, json.load(f)


def assert_hand_numbers(rows, metrics, groups=True):
    assert rows[0] == ["LabelName", "DisplayName", "AP"]
    assert [r[:2] for r in rows[1:]] == [list(c) for c in CLASSES]
    for mid, _, ap in rows[1:]:
        expected = FIXTURE_EXPECTED["per_class"][mid]
        assert (ap == "nan") if math.isnan(expected) else float(ap) == pytest.approx(expected, abs=1e-12), mid
    keys = ["mAP"] + ([f"mAP{g}" for g in range(5)] if groups else [])
    assert list(metrics) == keys
    for key in keys:
        assert metrics[key] == pytest.approx(FIXTURE_EXPECTED[key], abs=1e-12), key


def test_cli_round_trip_csv_to_json_to_metric(files, tmp_path):
    out = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, EVALUATE, "--annotations", files["json"], "--hierarchy", files["hierarchy"],
         "--predictions", files["results"], "--class-counts", files["class_counts"], "--output-dir", out],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # the class counts written by the converter are the fixture's box counts, so the groups differ
    # from the hand table's (which uses the fixture's training counts); mAP and per-class AP do not
    rows, metrics = read_outputs(out)
    assert_hand_numbers(rows, {"mAP": metrics["mAP"]}, groups=False)
    assert "| mAP | mAP0 | mAP1 | mAP2 | mAP3 | mAP4 | classes with ground truth |" in result.stdout
    assert "| 73.33 |" in result.stdout and "| 5 / 6 |" in result.stdout


@pytest.mark.parametrize("layout", ["csv", "json", "csv_gt_coco_results", "json_gt_csv_predictions"])
def test_every_input_layout_gives_the_hand_computed_numbers(files, tmp_path, layout):
    gt = {
        "csv": ["--annotations", files["boxes"], "--image-labels", files["labels"],
                "--class-descriptions", files["classes"]],
        "json": ["--annotations", files["json"]],
    }
    args = {
        "csv": gt["csv"] + ["--predictions", files["predictions"]],
        "json": gt["json"] + ["--predictions", files["results"]],
        "csv_gt_coco_results": gt["csv"] + ["--image-sizes", files["sizes"], "--predictions", files["results"]],
        "json_gt_csv_predictions": gt["json"] + ["--predictions", files["predictions"]],
    }[layout]
    out = str(tmp_path / layout)
    tool(EVALUATE)["main"](args + ["--hierarchy", files["hierarchy"], "--class-counts", files["counts"],
                                   "--output-dir", out])
    assert_hand_numbers(*read_outputs(out))


def test_class_counts_can_come_from_the_training_json(files, tmp_path):
    # the converted JSON as "training" JSON: counts Puppy 1, Toy 1, Robot dog 1, others 0;
    # ascending with ties by class: Animal, Dog, Tree, Puppy, Toy, Robot dog -> blocks
    # [Animal, Dog], [Tree], [Puppy], [Toy], [Robot dog] = 0.6667, nan, 0.5, 0.8333, 1.0
    out = str(tmp_path / "out")
    metrics = tool(EVALUATE)["main"]([
        "--annotations", files["json"], "--hierarchy", files["hierarchy"], "--predictions", files["results"],
        "--class-counts", files["json"], "--output-dir", out])
    assert metrics["mAP0"] == pytest.approx((0.5 + 5 / 6) / 2) and math.isnan(metrics["mAP1"])
    assert [metrics[f"mAP{g}"] for g in (2, 3, 4)] == pytest.approx([0.5, 5 / 6, 1.0])
    assert read_outputs(out)[1]["mAP1"] is None  # NaN is written as null in JSON


def test_converter_help_states_the_two_eqlv2_bugs_it_does_not_have(capsys):
    with pytest.raises(SystemExit):
        tool(CONVERT)["main"](["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "drops the first image-level-label row" in text and "never writes the attribute flags" in text


def test_cli_errors_name_what_is_missing(files, tmp_path):
    main = tool(EVALUATE)["main"]
    base = ["--hierarchy", files["hierarchy"], "--output-dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="CSV ground truth needs --image-labels and --class-descriptions"):
        main(["--annotations", files["boxes"], "--predictions", files["predictions"]] + base)
    # pixel results on normalised ground truth need the image sizes
    with pytest.raises(ValueError, match=r"results.json: the size of image img_\w is unknown"):
        main(["--annotations", files["boxes"], "--image-labels", files["labels"], "--class-descriptions",
              files["classes"], "--predictions", files["results"]] + base)
    with open(files["predictions"], "a") as f:
        f.write("img_a,/m/0cat,0.5,0,1,0,1\n")
    with pytest.raises(ValueError, match=r"predictions.csv:17: LabelName '/m/0cat' is not one of the 6 classes"):
        main(["--annotations", files["json"], "--predictions", files["predictions"]] + base)
    # a JSON written by EQLv2's tool has no flags: an error, not silently group-of-less numbers
    with open(files["json"]) as f:
        dataset = json.load(f)
    for ann in dataset["annotations"]:
        del ann["isgroupof"]
    with open(files["json"], "w") as f:
        json.dump(dataset, f)
    with pytest.raises(ValueError, match=r"annotation 1 \(image img_a\) has no 'isgroupof' flag"):
        main(["--annotations", files["json"], "--predictions", files["results"]] + base)
