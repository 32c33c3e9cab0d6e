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


def tiny_cfg(extra=()):
    return LazyConfig.apply_overrides(LazyConfig.load(CONFIG), TINY + list(extra))


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


@pytest.mark.parametrize("extra", [[], ["dataloader.test.mapper.opencv_resize=True"]],
                         ids=["detectron2_resize", "reference_opencv_resize"])
def test_results_json_holds_the_models_detections_in_image_pixels_with_lvis_ids(setup, tmp_path, extra):
    tmp, images, weights, model = setup
    out = tmp_path / "out"
    proc = run_predict("--input", str(images), "--output", str(out), "--confidence-threshold", str(THRESHOLD),
                       *TINY, *extra, f"train.init_checkpoint={weights}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    files = sorted(os.path.join(images, f) for f in os.listdir(images))
    assert {r["file_name"] for r in results} <= set(files)

    # The reference: the config's test mapper (Detectron2's DatasetMapper with the test
    # augmentations, or the reference's OpenCV read and resize), then the model.
    cfg = tiny_cfg(extra)
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


def test_help_shows_each_default_once_and_none_where_there_is_none():
    proc = subprocess.run([sys.executable, TOOL, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    assert "(default: None)" not in text
    assert "(default: 0.5)" in text
    options = text.split("options:")[1]
    weights_help = options[options.index("--weights WEIGHTS"):]  # the last option
    assert weights_help.count("default") == 1, weights_help


def test_an_unreadable_image_is_skipped_named_and_counted_and_the_rest_written(setup, tmp_path):
    """The broken file sorts first, so a run that stops at it would write nothing at all."""
    tmp, images, weights, _ = setup
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    broken = folder / "000.jpg"  # before the others' names
    broken.write_bytes(b"\xff\xd8\xff not really a JPEG")
    args = ["--confidence-threshold", str(THRESHOLD), *TINY, f"train.init_checkpoint={weights}"]
    proc = run_predict("--input", str(folder), "--output", str(tmp_path / "out"), *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"cannot read image {broken}" in proc.stderr
    assert f"1 of 4 images skipped (unreadable): {broken}" in proc.stderr
    clean = run_predict("--input", str(images), "--output", str(tmp_path / "clean"), *args)
    assert clean.returncode == 0, clean.stderr[-3000:]
    with open(tmp_path / "out" / "results.json") as f:
        results = json.load(f)
    with open(tmp_path / "clean" / "results.json") as f:
        expected = json.load(f)
    assert len(expected) > 0
    # the same detections of the same pictures; image ids stay the files' indices (broken = 0)
    strip = [(os.path.basename(r["file_name"]), r["image_id"] - 1, r["category_id"], r["bbox"], r["score"])
             for r in results]
    assert strip == [(os.path.basename(r["file_name"]), r["image_id"], r["category_id"], r["bbox"], r["score"])
                     for r in expected]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.listdir(images)) + ["results.json"]


@pytest.mark.parametrize("extension,codec", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_a_video_gives_an_annotated_video_and_the_models_detections_per_frame(setup, tmp_path, extension, codec):
    import cv2
    import detectron2.data.transforms as T
    from detectron2.data.detection_utils import convert_PIL_to_numpy

    tmp, images, weights, model = setup
    size = (176, 144)  # (W, H)
    clip = str(tmp_path / f"clip{extension}")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*codec), 4.0, size)
    assert writer.isOpened()
    for name in sorted(os.listdir(images)):
        writer.write(cv2.resize(cv2.imread(str(images / name)), size))
    writer.release()

    out = tmp_path / "out"
    proc = run_predict("--input", clip, "--output", str(out), "--confidence-threshold", str(THRESHOLD), *TINY,
                       f"train.init_checkpoint={weights}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)

    # The reference: the frames as OpenCV decodes them, the config's test resize, the model.
    cfg = tiny_cfg()
    augmentations = T.AugmentationList(instantiate(cfg.dataloader.test.mapper.augmentations))
    capture, expected, frames = cv2.VideoCapture(clip), [], 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        image = convert_PIL_to_numpy(Image.fromarray(bgr[:, :, ::-1]), cfg.dataloader.test.mapper.image_format)
        aug_input = T.AugInput(image)
        augmentations(aug_input)
        tensor = torch.as_tensor(aug_input.image.astype("float32").transpose(2, 0, 1))
        with torch.no_grad():
            (output,) = model([{"image": tensor, "height": size[1], "width": size[0]}])
        inst = output["instances"]
        inst = inst[inst.scores >= THRESHOLD]
        for box, score, c in zip(inst.pred_boxes.tensor, inst.scores, inst.pred_classes):
            xywh = BoxMode.convert(box[None], BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)[0].tolist()
            expected.append((frames, int(c) + 1, xywh, float(score)))
        frames += 1
    assert frames == len(os.listdir(images)) and len(expected) > 0
    assert len(results) == len(expected)
    for r, (frame, category_id, xywh, score) in zip(results, expected):
        assert (r["file_name"], r["frame"], r["image_id"], r["category_id"]) == (clip, frame, frame, category_id)
        np.testing.assert_allclose(r["bbox"], xywh, atol=2e-3)
        assert r["score"] == pytest.approx(score, abs=1e-5)

    # the annotated copy: as many frames, same size and rate, and the boxes drawn on them
    annotated = cv2.VideoCapture(str(out / os.path.basename(clip)))
    assert annotated.get(cv2.CAP_PROP_FPS) == pytest.approx(4.0)
    source, drawn = cv2.VideoCapture(clip), 0
    while True:
        ok, frame = annotated.read()
        if not ok:
            break
        assert frame.shape == (size[1], size[0], 3)
        drawn += int(np.abs(frame.astype(int) - source.read()[1].astype(int)).mean() > 1.0)
    assert drawn == frames
    assert f"{frames} frames, {len(results)} detections" in proc.stdout
