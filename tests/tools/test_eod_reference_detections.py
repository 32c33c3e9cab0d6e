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
    prediction conv gives every (anchor, class) about the same score."""
    eod = OrderedDict(eod)
    eod[f"{key}.weight"] = eod[f"{key}.weight"] * 4
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
