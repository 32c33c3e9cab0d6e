"""Converted random-weight reference models with ``model.eod_inference`` give the reference's
final detections on the same network input: our model end to end against the re-stated reference
network (eod_reference.py, eod_yolox_reference.py) followed by its re-stated post-processing
(eod_postprocess_reference.py). Boxes within 1e-3 px, scores within 1e-5, same class."""
from collections import OrderedDict

import pytest
import torch

from detectron2.config import LazyConfig, instantiate

from efl.checkpoint_conversion import convert_eod_checkpoint

from .eod_postprocess_reference import count_reproduced, eod_detections, ours_as_rows
from .eod_reference import eod_improved_baseline_forward, eod_improved_baseline_layout, random_eod_state_dict
from .eod_yolox_reference import eod_yolox_ip_forward, eod_yolox_ip_layout

# (picture h, w) -> network input (resized h, w): scales below and above 1
R50_CASES = [((480, 640), (384, 512)), ((640, 427), (480, 320)), ((200, 300), (400, 600))]
# YOLOX-IP: longest side 640 (cv2 sizes), on the 640 x 640 canvas
YOLOX_CASES = [((480, 640), (480, 640)), ((640, 427), (640, 427)), ((200, 300), (427, 640))]


def _model(config, state_dict, *overrides):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config), list(overrides))
    model = instantiate(cfg.model).eval()
    model.load_state_dict(state_dict)
    return model


def _sharpen(eod, key):
    """Class logits spread as a trained detector's (a few high scores, most low): the random
    prediction conv gives every (anchor, class) about the same score. Not so much that sigmoids
    saturate at 1.0 in float32: exactly tied scores are ordered arbitrarily by any sort."""
    eod = OrderedDict(eod)
    eod[f"{key}.weight"] = eod[f"{key}.weight"] * 2
    eod[f"{key}.bias"] = eod[f"{key}.bias"] - 4.6
    return eod


def _smooth_image(height, width, seed):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, max(height // 32, 2), max(width // 32, 2), generator=g) * 255
    return torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear")[0]


def _compare(model, reference_forward, cases, clip_to_canvas=False, one_scale=False, **post):
    reproduced, total = 0, 0
    for seed, (picture, resized) in enumerate(cases):
        image = _smooth_image(*resized, seed)
        with torch.no_grad():
            (ours,) = model([{"image": image, "height": picture[0], "width": picture[1]}])
            network_input = model.preprocess_image([{"image": image}]).tensor  # padded, normalised
            cls, box, iou = reference_forward(network_input)
        canvas = tuple(network_input.shape[-2:])
        clip_size = canvas if clip_to_canvas else resized
        if one_scale:
            scale = (max(resized) / max(picture),) * 2
        else:
            scale = (resized[0] / picture[0], resized[1] / picture[1])
        reference = eod_detections(cls, box, iou, clip_size=clip_size, picture_scale=scale, **post)
        reproduced += count_reproduced(reference, ours_as_rows(ours["instances"]))
        total += len(reference)
    return reproduced, total


@pytest.mark.parametrize("eod_inference,expect_all", [("improved_baseline", True), (None, False)])
def test_r50_reproduces_the_reference_detections(eod_inference, expect_all):
    eod = _sharpen(random_eod_state_dict(eod_improved_baseline_layout(50), seed=3),
                   "roi_head.cls_subnet_pred")
    converted = convert_eod_checkpoint(eod).state_dict
    model = _model("configs/efl_improved_baseline_r50_2x_rfs.py", converted,
                   f"model.eod_inference={eod_inference}" if eod_inference else "model.eod_inference=null")
    reproduced, total = _compare(
        model, lambda x: eod_improved_baseline_forward(eod, x, depth=50), R50_CASES,
        strides=[8, 16, 32, 64, 128], scales=[6, 8], aligned=False, pre_nms_top_n=6000,
        nms_threshold=0.5)
    print(f"improved baseline R50, eod_inference={eod_inference}: {reproduced} / {total}")
    assert total == 900
    assert (reproduced == total) == expect_all, (reproduced, total)


@pytest.mark.parametrize("eod_inference,expect_all", [("yolox_ip", True), (None, False)])
def test_yolox_ip_reproduces_the_reference_detections(eod_inference, expect_all):
    eod = _sharpen(random_eod_state_dict(eod_yolox_ip_layout("S"), seed=4), "roi_head.cls_preds.0")
    for level in (1, 2):
        eod = _sharpen(eod, f"roi_head.cls_preds.{level}")
    converted = convert_eod_checkpoint(eod).state_dict
    model = _model("configs/efl_yolox_ip_s_300e_rfs.py", converted,
                   f"model.eod_inference={eod_inference}" if eod_inference else "model.eod_inference=null")
    reproduced, total = _compare(
        model, lambda x: eod_yolox_ip_forward(eod, x), YOLOX_CASES, clip_to_canvas=True,
        one_scale=True, strides=[8, 16, 32], scales=[3, 4], aligned=True, pre_nms_top_n=1000,
        nms_threshold=0.65)
    print(f"YOLOX-IP S, eod_inference={eod_inference}: {reproduced} / {total}")
    assert total == 900
    assert (reproduced == total) == expect_all, (reproduced, total)


# Raw pictures end to end: the reference reads with OpenCV and resizes with keep_ar_resize
# (det_transforms.py: cv2.resize(fx=s, fy=s, INTER_LINEAR), s = min(short / short side, max / long
# side); YOLOX-IP keep_ar_resize_max with top-left padding to 640 x 640), normalises (R50:
# (x / 255 - mean) / std, RGB; YOLOX-IP: BGR 0-255) and pads the batch (alignment 64 / 32).
PICTURES = [(480, 640), (640, 427), (200, 300)]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _write_pictures(directory):
    import cv2
    import numpy as np

    paths = []
    for seed, (height, width) in enumerate(PICTURES):
        rgb = (_smooth_image(height, width, 100 + seed).permute(1, 2, 0).numpy()).astype(np.uint8)
        path = str(directory / f"picture{seed}.png")
        cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def _reference_input(path, short, max_size, rgb, canvas=None, alignment=64):
    """The reference's network input for a picture file, and (picture size, resized size)."""
    import cv2
    import torch.nn.functional as F

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if rgb:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    s = min(short / min(height, width), max_size / max(height, width))
    image = cv2.resize(image, None, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
    resized = image.shape[:2]
    x = torch.from_numpy(image).permute(2, 0, 1).float()
    if rgb:
        x = (x / 255 - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    if canvas:
        x = F.pad(x, (0, canvas - resized[1], 0, canvas - resized[0]))
    pad_h, pad_w = (-x.shape[1]) % alignment, (-x.shape[2]) % alignment
    return F.pad(x, (0, pad_w, 0, pad_h))[None], (height, width), resized, s


def _compare_pictures(model, mapper, reference_forward, paths, *, rgb, short, max_size, canvas,
                      alignment, **post):
    reproduced, total = 0, 0
    for path in paths:
        with torch.no_grad():
            (ours,) = model([mapper({"file_name": path, "image_id": 0})])
            x, picture, resized, s = _reference_input(path, short, max_size, rgb, canvas, alignment)
            cls, box, iou = reference_forward(x)
        if canvas:  # image_info holds the canvas; dump divides by the one scale s
            clip_size, scale = (canvas, canvas), (s, s)
        else:  # separate_wh: the resized / picture ratio of each axis
            clip_size, scale = resized, (resized[0] / picture[0], resized[1] / picture[1])
        reference = eod_detections(cls, box, iou, clip_size=clip_size, picture_scale=scale, **post)
        # R50: our (x - 255 mean) / (255 std) and the reference's (x / 255 - mean) / std round
        # differently (5e-7 on the input, up to ~2e-3 px on a box): 1e-2 px and 1e-4 here
        reproduced += count_reproduced(reference, ours_as_rows(ours["instances"]),
                                       box_tol=1e-2, score_tol=1e-4)
        total += len(reference)
    return reproduced, total


@pytest.mark.parametrize("opencv_resize,expect_all", [(True, True), (False, False)])
def test_r50_raw_pictures_end_to_end(tmp_path, opencv_resize, expect_all):
    # keep_ar_resize at short side 320, long side <= 533 (the rule of 800 / 1333, cheaper on CPU)
    eod = _sharpen(random_eod_state_dict(eod_improved_baseline_layout(50), seed=3),
                   "roi_head.cls_subnet_pred")
    config = "configs/efl_improved_baseline_r50_2x_rfs.py"
    overrides = ["model.eod_inference=improved_baseline",
                 "dataloader.test.mapper.augmentations.0.short_edge_length=320",
                 "dataloader.test.mapper.augmentations.0.max_size=533",
                 f"dataloader.test.mapper.opencv_resize={opencv_resize}"]
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config), overrides)
    model = instantiate(cfg.model).eval()
    model.load_state_dict(convert_eod_checkpoint(eod).state_dict)
    mapper = instantiate(cfg.dataloader.test.mapper)
    reproduced, total = _compare_pictures(
        model, mapper, lambda x: eod_improved_baseline_forward(eod, x, depth=50),
        _write_pictures(tmp_path), rgb=True, short=320, max_size=533, canvas=None, alignment=64,
        strides=[8, 16, 32, 64, 128], scales=[6, 8], aligned=False, pre_nms_top_n=6000,
        nms_threshold=0.5)
    print(f"R50 raw pictures, opencv_resize={opencv_resize}: {reproduced} / {total}")
    assert total == 900
    assert (reproduced == total) == expect_all, (reproduced, total)


@pytest.mark.parametrize("opencv_resize,expect_all", [(True, True), (False, False)])
def test_yolox_ip_raw_pictures_end_to_end(tmp_path, opencv_resize, expect_all):
    eod = _sharpen(random_eod_state_dict(eod_yolox_ip_layout("S"), seed=4), "roi_head.cls_preds.0")
    for level in (1, 2):
        eod = _sharpen(eod, f"roi_head.cls_preds.{level}")
    config = "configs/efl_yolox_ip_s_300e_rfs.py"
    cfg = LazyConfig.apply_overrides(LazyConfig.load(config), [
        "model.eod_inference=yolox_ip", f"dataloader.test.mapper.opencv_resize={opencv_resize}"])
    model = instantiate(cfg.model).eval()
    model.load_state_dict(convert_eod_checkpoint(eod).state_dict)
    mapper = instantiate(cfg.dataloader.test.mapper)
    reproduced, total = _compare_pictures(
        model, mapper, lambda x: eod_yolox_ip_forward(eod, x), _write_pictures(tmp_path),
        rgb=False, short=640, max_size=640, canvas=640, alignment=32, strides=[8, 16, 32],
        scales=[3, 4], aligned=True, pre_nms_top_n=1000, nms_threshold=0.65)
    print(f"YOLOX-IP raw pictures, opencv_resize={opencv_resize}: {reproduced} / {total}")
    assert total == 900
    assert (reproduced == total) == expect_all, (reproduced, total)
