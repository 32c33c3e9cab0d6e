"""tools/export_model.py and efl.export: the TorchScript and ONNX Runtime graphs of both families
give the PyTorch model's detections (boxes to 1e-3 px, scores to 1e-4, same classes) on the
synthetic set's pictures of several sizes, including sizes smaller than the traced one; a converted
reference (EOD) YOLOX-IP-S checkpoint exports too.

The weights are random but conditioned like a trained detector's: Kaiming-scaled convolutions,
BatchNorm statistics measured on the test pictures, and small output layers, so that scores are
spread (no ties for NMS and top-k to break differently) and box deltas are moderate."""
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

import efl.data  # noqa: F401  (registers the synthetic sets)
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog

from efl.checkpoint_conversion import convert_eod_checkpoint
from efl.export import ExportedDetector

from ..tools.eod_reference import random_eod_state_dict
from ..tools.eod_yolox_reference import eod_yolox_ip_layout

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "export_model.py")
TINY = ["dataloader.train.dataset.names=synthetic_lt_tiny_train",
        "dataloader.test.dataset.names=synthetic_lt_tiny_val", "model.num_classes=12"]
FAMILIES = {
    "improved_baseline": "configs/demo/eqfl_synthetic_small.py",  # EQFL: the loss does not enter the graph
    "yolox_ip": "configs/demo/efl_yolox_ip_nano_synthetic.py",
}
BOX_ATOL, SCORE_ATOL = 1e-3, 1e-4


def load_cfg(config, *overrides):
    return LazyConfig.apply_overrides(LazyConfig.load(os.path.join(REPO, config)), list(overrides))


def pictures(cfg, count=6):
    """The tiny val pictures through the config's test mapper: (3, H, W) float tensors."""
    mapper = instantiate(cfg.dataloader.test.mapper)
    return [mapper(record)["image"].float() for record in DatasetCatalog.get("synthetic_lt_tiny_val")[:count]]


@torch.no_grad()
def condition_like_trained(model, images):
    torch.manual_seed(0)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.normal_(module.weight, std=module.weight[0].numel() ** -0.5)
            if any(k in name for k in ("cls_score", "cls_preds", "iou_pred", "obj_preds")):
                torch.nn.init.normal_(module.weight, std=0.05)
                torch.nn.init.zeros_(module.bias)
            elif any(k in name for k in ("bbox_pred", "reg_preds")):
                torch.nn.init.normal_(module.weight, std=0.01)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in norms:  # cumulative statistics of the test pictures, padded as in inference
        bn.reset_running_stats()
        bn.momentum = None
    model.eval()
    batch = model.preprocess_image([{"image": image} for image in images])
    for bn in norms:
        bn.train()
    features = model.backbone(batch.tensor)
    model.head([features[f] for f in model.head_in_features])
    model.eval()


@torch.no_grad()
def eager_detections(model, image):
    (output,) = model([{"image": image}])
    inst = output["instances"]
    return inst.pred_boxes.tensor.numpy(), inst.scores.numpy(), inst.pred_classes.numpy()


def assert_same_detections(expected, actual):
    """One-to-one: every detection has a partner of the same class within the tolerances. Two
    detections whose scores differ by less than the exporter's rounding may swap places, and one
    within SCORE_ATOL of the cut (the per-image cap) may be in one list only."""
    (e_boxes, e_scores, e_classes), (a_boxes, a_scores, a_classes) = expected, actual
    assert np.ptp(e_scores) > 0.05, "degenerate scores: the comparison would not tell detections apart"
    cut = max(e_scores.min(), a_scores.min()) + SCORE_ATOL
    used = np.zeros(len(a_scores), dtype=bool)
    for box, score, cls in zip(e_boxes, e_scores, e_classes):
        close = (~used & (a_classes == cls) & (np.abs(a_scores - score) <= SCORE_ATOL)
                 & (np.abs(a_boxes - box).max(axis=1) <= BOX_ATOL))
        if close.any():
            used[np.flatnonzero(close)[np.argmin(np.abs(a_scores[close] - score))]] = True
        else:
            assert score <= cut, f"no exported detection matches class {cls} score {score:.6f} box {box}"
    assert (a_scores[~used] <= cut).all(), f"extra exported detections: {a_scores[~used]}"
    assert used.sum() >= 0.95 * len(e_scores)


def export(config, weights, tmp_path, fmt, *extra):
    """tools/export_model.py's main, in this process (a subprocess would import torch again)."""
    sys.path.insert(0, os.path.dirname(TOOL))
    try:
        import export_model
    finally:
        sys.path.pop(0)
    out = tmp_path / fmt
    export_model.main(["--config-file", os.path.join(REPO, config), "--format", fmt, "--output", str(out),
                       "--weights", str(weights), *extra])
    return str(out / ("model.onnx" if fmt == "onnx" else "model.ts"))


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    config = FAMILIES[request.param]
    cfg = load_cfg(config, *TINY)
    model = instantiate(cfg.model).eval()
    images = pictures(cfg)
    condition_like_trained(model, images)
    tmp = tmp_path_factory.mktemp(request.param)
    DetectionCheckpointer(model, save_dir=str(tmp)).save("weights")
    return config, model, images, tmp


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_graph_gives_the_models_detections_at_every_size(family, fmt, one_thread):
    config, model, images, tmp = family
    # The improved baseline is traced on a larger picture than the test's: 2,400 (anchor, class)
    # candidates on P5 at the trace, 600-720 on the pictures, fewer than top-k's 1,000.
    trace_size = ["--trace-size", "320", "320"] if model.test_pad_to is None else []
    path = export(config, tmp / "weights.pth", tmp, fmt, *trace_size, *TINY)
    detector = ExportedDetector(path, num_threads=1)
    sizes = {tuple(image.shape[1:]) for image in images}
    assert len(sizes) >= 3, sizes
    if model.test_pad_to is None:
        assert all(h < 320 and w < 320 for h, w in sizes), sizes
    assert detector.metadata["num_classes"] == 12 and len(detector.metadata["thing_classes"]) == 12
    assert detector.metadata["category_ids"] == list(range(1, 13))  # LVIS-style ids of the synthetic set
    for image in images:
        assert_same_detections(eager_detections(model, image), detector(image))


@pytest.fixture(scope="module")
def converted_yolox_s(tmp_path_factory):
    """A reference YOLOX-IP-S file (EQFL, 4 classes) converted as tools/convert_eod_checkpoint.py does."""
    eod = random_eod_state_dict(eod_yolox_ip_layout("S", num_classes=4), seed=0)
    conversion = convert_eod_checkpoint({"model": OrderedDict(eod)}, loss="eqfl")
    assert conversion.info.config == "configs/eqfl_yolox_ip_s_300e_rfs.py"
    # Random reference weights decode boxes thousands of pixels wide, where float32 itself resolves
    # only ~1e-3 px, and saturate every score near 0.99; a trained model's outputs are far smaller.
    # Scale the output layers to that range (the rest of the file is used as converted).
    for key, value in conversion.state_dict.items():
        if key.startswith(("head.reg_preds.", "head.cls_preds.", "head.obj_preds.")):
            value.mul_(0.1)
    tmp = tmp_path_factory.mktemp("converted")
    torch.save({"model": conversion.state_dict}, tmp / "converted.pth")
    return conversion.info.config, conversion.info.overrides, tmp


def test_a_converted_reference_checkpoint_exports_to_onnx(converted_yolox_s, one_thread):
    config, overrides, tmp = converted_yolox_s
    path = export(config, tmp / "converted.pth", tmp, "onnx", "--trace-size", "480", "640", *overrides)
    model = instantiate(load_cfg(config, *overrides).model).eval()
    DetectionCheckpointer(model).load(str(tmp / "converted.pth"))
    detector = ExportedDetector(path, num_threads=1)
    generator = torch.Generator().manual_seed(0)
    for size in [(480, 640), (640, 352)]:  # the test resize keeps the longest side at 640
        image = torch.randint(0, 256, (3, *size), generator=generator).float()
        assert_same_detections(eager_detections(model, image), detector(image))
    with pytest.raises(ValueError, match="takes images up to 640 x 640"):
        detector(torch.zeros(3, 480, 704))


def test_user_errors_are_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, TOOL, "--config-file", os.path.join(REPO, FAMILIES["yolox_ip"]),
                           "--format", "onnx", "--output", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no weights: pass --weights PATH or the override train.init_checkpoint=PATH" in proc.stderr


def test_scale_to_gives_detectron2s_detector_postprocess():
    from detectron2.modeling import detector_postprocess
    from detectron2.structures import Boxes, Instances

    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=generator) * torch.tensor([300.0, 200.0])
    boxes = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=generator) * 150], dim=1)  # some past the edge
    instances = Instances((200, 300), pred_boxes=Boxes(boxes.clone()), scores=torch.rand(50, generator=generator))
    expected = detector_postprocess(instances, 533, 800).pred_boxes.tensor.numpy()
    assert len(expected) == 50 and (expected[:, 2] == 800).any()
    np.testing.assert_allclose(ExportedDetector.scale_to(boxes.numpy(), (200, 300), (533, 800)), expected, atol=1e-4)


def test_a_model_with_the_reference_inference_rules_is_refused(tmp_path):
    from efl.export import export_onnx

    cfg = load_cfg(FAMILIES["improved_baseline"], *TINY, "model.eod_inference=topk_counts_anchors")
    model = instantiate(cfg.model).eval()
    with pytest.raises(ValueError, match="export it with model.eod_inference=None"):
        export_onnx(model, str(tmp_path / "model.onnx"), (160, 160))
