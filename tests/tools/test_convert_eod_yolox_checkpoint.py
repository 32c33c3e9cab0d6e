"""tools/convert_eod_checkpoint.py and efl.checkpoint_conversion on YOLOX-IP.

The reference's YOLOX-IP files are rebuilt from its module definitions
(tests/tools/eod_yolox_reference.py), filled with random values, converted, loaded into the model
of this project's S / M configs and run next to the re-stated reference network.
"""
import functools
import os
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate

from efl.checkpoint_conversion import (
    EODCheckpointError,
    check_against_model,
    convert_eod_checkpoint,
    convert_eod_state_dict,
)

from .eod_reference import random_eod_state_dict
from .eod_yolox_reference import eod_yolox_ip_forward, eod_yolox_ip_layout

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Key lists of the reference's YOLOX-IP-S/M written by another reading of its source, for the
# YOLOX-IP modules' own tests.
OTHER_READING = os.path.join(REPO, "tests", "modeling", "yolox", "eod_yolox_ip_{}_keys.txt")


def config_model(config, *overrides):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(REPO, config)), list(overrides))
    return instantiate(cfg.model).eval()


@functools.lru_cache(maxsize=None)
def _cached(size, num_classes, seed):
    return random_eod_state_dict(eod_yolox_ip_layout(size, num_classes=num_classes), seed=seed)


def eod_state_dict(size="S", num_classes=1203, seed=0):
    return OrderedDict(_cached(size, num_classes, seed))


def shapes_only(layout):
    """Zero-memory tensors of the layout's shapes: enough to detect family and size."""
    return OrderedDict(
        (k, torch.zeros((), dtype=torch.int64 if not s else torch.float32).expand(s))
        for k, s in layout.items()
    )


def _read_other_reading(size):
    keys = OrderedDict()
    with open(OTHER_READING.format(size.lower())) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            key, shape = line.split()
            keys[key] = () if shape == "-" else tuple(int(d) for d in shape.split("x"))
    return keys


@pytest.mark.parametrize("size", ["S", "M"])
def test_layout_agrees_with_the_other_reading_of_the_reference(size):
    ours = eod_yolox_ip_layout(size)
    other = _read_other_reading(size)
    assert dict(ours) == dict(other)
    if size == "S":
        assert len(ours) == 465  # the released YOLOX-IP-S files have 465 keys


@pytest.mark.parametrize("size", ["S", "M"])
@torch.no_grad()
def test_converted_model_computes_the_reference_head_outputs(size):
    eod = eod_state_dict(size)
    conversion = convert_eod_checkpoint({"model": eod})
    info = conversion.info
    assert (info.family, info.size, info.num_classes, info.num_anchors) == ("yolox_ip", size, 1203, 2)
    assert info.config == f"configs/efl_yolox_ip_{size.lower()}_300e_rfs.py"
    model = config_model(info.config)
    check_against_model(conversion.state_dict, info, model.state_dict())
    model.load_state_dict(conversion.state_dict, strict=True)
    for key, value in eod.items():  # BN counters and EFL statistics carried as they are
        if key.endswith("num_batches_tracked") or key.startswith("post_process."):
            assert torch.equal(conversion.state_dict[info.rules.to_ours(key)], value), key

    image = torch.randint(0, 256, (1, 3, 64, 96), generator=torch.Generator().manual_seed(0)).float()
    features = model.backbone(image)
    ours = model.head([features[f] for f in model.head_in_features])
    ref = eod_yolox_ip_forward(eod, image)
    for name, ours_maps, ref_maps in zip(("cls", "box", "iou"), ours, ref):
        assert len(ours_maps) == len(ref_maps) == 3
        for level, (o, r) in enumerate(zip(ours_maps, ref_maps)):
            assert o.shape == r.shape, (name, level)
            assert r.std() > 1e-3, (name, level)
            assert float((o - r).abs().max() / r.std()) < 1e-4, (name, level)

    # The Focus stem's phase order matters: Megvii's order (groups [0, 2, 1, 3]) changes the output.
    stem = "backbone.bottom_up.stem.conv_block.conv.weight"
    megvii = conversion.state_dict[stem].view(-1, 4, 3, 3, 3)[:, [0, 2, 1, 3]].reshape(-1, 12, 3, 3)
    model.load_state_dict({**conversion.state_dict, stem: megvii})
    features = model.backbone(image)
    changed = model.head([features[f] for f in model.head_in_features])[0]
    assert min(float((o - r).abs().max() / r.std()) for o, r in zip(changed, ref[0])) > 1e-2


@pytest.mark.parametrize("size", ["S", "M", "L", "X"])
def test_size_is_found_from_stem_width_and_dark2_depth(size):
    info = convert_eod_state_dict(shapes_only(eod_yolox_ip_layout(size, num_classes=5)))[1]
    assert info.size == size and info.num_classes == 5
    assert info.overrides == ["model.num_classes=5"]
    assert info.config == f"configs/efl_yolox_ip_{size.lower()}_300e_rfs.py"
    assert os.path.isfile(os.path.join(REPO, info.config))


def test_loss_chooses_between_the_efl_and_eqfl_configs_of_a_size():
    eod = shapes_only(eod_yolox_ip_layout("M"))
    assert convert_eod_state_dict(eod, loss="eqfl")[1].config == "configs/eqfl_yolox_ip_m_300e_rfs.py"
    assert convert_eod_state_dict(eod, loss="efl")[1].config == "configs/efl_yolox_ip_m_300e_rfs.py"


def test_unknown_widths_and_anchor_counts_are_refused():
    layout = eod_yolox_ip_layout("S")
    eod = shapes_only(layout)
    eod["backbone.stem.conv_block.conv.weight"] = torch.zeros(24, 12, 3, 3)  # yolox_tiny's width
    with pytest.raises(EODCheckpointError, match="24-channel stem"):
        convert_eod_state_dict(eod)
    one_point = shapes_only(eod_yolox_ip_layout("S", num_point=1))
    with pytest.raises(EODCheckpointError, match="1 anchors per location"):
        convert_eod_state_dict(one_point)


def test_ema_weights_are_the_default_and_model_weights_on_request():
    model_sd, ema_sd = eod_state_dict("S", num_classes=3), eod_state_dict("S", num_classes=3, seed=1)
    checkpoint = {"model": OrderedDict((f"module.{k}", v) for k, v in model_sd.items()),
                  "ema": {"ema_state_dict": ema_sd, "decay": 0.9998, "warmup": 2000, "inner_T": 0}}
    key = "head.cls_preds.0.weight"
    default = convert_eod_checkpoint(checkpoint)
    assert default.source == "ema.ema_state_dict"
    assert torch.equal(default.state_dict[key], ema_sd["roi_head.cls_preds.0.weight"])
    trained = convert_eod_checkpoint(checkpoint, weights="model")
    assert torch.equal(trained.state_dict[key], model_sd["roi_head.cls_preds.0.weight"])


def test_cli_reads_the_loss_from_the_released_file_name(tmp_path):
    eod = eod_state_dict("S", num_classes=4)
    src = tmp_path / "eqfl_yolox_small.pth"
    torch.save({"model": eod, "ema": {"ema_state_dict": eod}}, src)
    dst = tmp_path / "converted.pth"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "convert_eod_checkpoint.py"), str(src), str(dst)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "family: yolox_ip" in proc.stdout and "size: S" in proc.stdout
    assert "config: configs/eqfl_yolox_ip_s_300e_rfs.py model.num_classes=4" in proc.stdout
    assert "weights: ema.ema_state_dict" in proc.stdout
    model = config_model("configs/eqfl_yolox_ip_s_300e_rfs.py", "model.num_classes=4")
    DetectionCheckpointer(model).load(str(dst))
    assert torch.equal(model.head.obj_preds[2].bias, eod["roi_head.obj_preds.2.bias"])
