"""tools/predict.py on the tiny synthetic set with a random-weight demo detector: the json holds
what Detectron2's own test mapper + the model give for each image (boxes in image pixels, LVIS
category ids), pictures are written, and user errors are one clear line."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import efl.data  # noqa: F401  (registers the synthetic sets)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "predict.py")
CONFIG = os.path.join(REPO, "configs", "demo", "efl_synthetic_small.py")
TINY = ["dataloader.train.dataset.names=synthetic_lt_tiny_train",
        "dataloader.test.dataset.names=synthetic_lt_tiny_val", "model.num_classes=12", "train.device=cpu"]
THRESHOLD = 0.33


def tiny_cfg():
    return LazyConfig.apply_overrides(LazyConfig.load(CONFIG), TINY)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Three val images and random weights whose classification bias is raised so that some
    detections pass the threshold."""
    tmp = tmp_path_factory.mktemp("predict")
    records = DatasetCatalog.get("synthetic_lt_tiny_val")[:3]
    images = tmp / "images"
    images.mkdir()
    for record in records:
        shutil.copy(record["file_name"], images)
    torch.manual_seed(0)
    model = instantiate(tiny_cfg().model).eval()
    with torch.no_grad():
        model.head.cls_score.bias.fill_(0.0)
    DetectionCheckpointer(model, save_dir=str(tmp)).save("random")
    return tmp, images, str(tmp / "random.pth"), model


def run_predict(*args):
    return subprocess.run([sys.executable, TOOL, "--config-file", CONFIG, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def test_results_json_holds_the_models_detections_in_image_pixels_with_lvis_ids(setup, tmp_path):
    tmp, images, weights, model = setup
    out = tmp_path / "out"
    proc = run_predict("--input", str(images), "--output", str(out), "--confidence-threshold", str(THRESHOLD),
                       *TINY, f"train.init_checkpoint={weights}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    files = sorted(os.path.join(images, f) for f in os.listdir(images))
    assert {r["file_name"] for r in results} <= set(files)

    # The reference: Detectron2's DatasetMapper with the config's test augmentations, then the model.
    cfg = tiny_cfg()
    mapper = instantiate(cfg.dataloader.test.mapper)
    expected = []
    for path in files:
        width, height = Image.open(path).size
        with torch.no_grad():
            (output,) = model([mapper({"file_name": path, "height": height, "width": width})])
        inst = output["instances"]
        inst = inst[inst.scores >= THRESHOLD]
        for box, score, c in zip(inst.pred_boxes.tensor, inst.scores, inst.pred_classes):
            xywh = BoxMode.convert(box[None], BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)[0].tolist()
            expected.append((path, int(c) + 1, xywh, float(score)))  # LVIS ids are 1-based
    assert len(expected) > 0 and len(results) == len(expected)
    for r, (path, category_id, xywh, score) in zip(results, expected):
        assert (r["file_name"], r["category_id"]) == (path, category_id)
        np.testing.assert_allclose(r["bbox"], xywh, atol=2e-3)
        assert r["score"] == pytest.approx(score, abs=1e-5)
    for path in files:
        with open(out / os.path.basename(path), "rb") as f:
            assert f.read(3) == b"\xff\xd8\xff"  # a JPEG picture per input
    assert f"{len(files)} images, {len(results)} detections" in proc.stdout


def test_weights_option_and_a_single_file_glob(setup, tmp_path):
    tmp, images, weights, _ = setup
    first = sorted(os.listdir(images))[0]
    proc = run_predict("--input", str(images / ("*" + first[-6:])), "--output", str(tmp_path), "--weights", weights,
                       *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == sorted([first, "results.json"])


@pytest.mark.parametrize("case", ["no_match", "unreadable", "no_weights", "missing_weights"])
def test_user_errors_are_one_clear_line(setup, tmp_path, case):
    tmp, images, weights, _ = setup
    inputs, extra, expected = str(images), [f"train.init_checkpoint={weights}"], None
    if case == "no_match":
        inputs, expected = str(tmp_path / "*.png"), "no file matches --input"
    elif case == "unreadable":
        broken = tmp_path / "broken.jpg"
        broken.write_bytes(b"not an image")
        inputs, expected = str(broken), f"cannot read image {broken}"
    elif case == "no_weights":
        extra, expected = [], "no weights: pass --weights PATH or the override train.init_checkpoint=PATH"
    else:
        extra, expected = ["train.init_checkpoint=/nowhere/model.pth"], "weights /nowhere/model.pth do not exist"
    proc = run_predict("--input", inputs, "--output", str(tmp_path / "out"), *TINY, *extra)
    assert proc.returncode != 0
    assert expected in proc.stderr and "Traceback" not in proc.stderr
