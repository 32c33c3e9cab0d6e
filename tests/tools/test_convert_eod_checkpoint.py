"""tools/convert_eod_checkpoint.py and efl.checkpoint_conversion on the improved baseline.

No released .pth file can be downloaded here, so the reference's files are rebuilt from its module
definitions (tests/tools/eod_reference.py: keys, shapes and a functional forward written from the
reference's source), filled with random values, converted, loaded into the model of this
project's config, and run side by side with the re-stated reference network.
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

from .eod_reference import (
    eod_improved_baseline_forward,
    eod_improved_baseline_layout,
    random_eod_state_dict,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
R50_CONFIG = os.path.join(REPO, "configs", "efl_improved_baseline_r50_2x_rfs.py")
R101_CONFIG = os.path.join(REPO, "configs", "efl_improved_baseline_r101_2x_rfs.py")


def config_model(path, *overrides):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(path), list(overrides))
    return instantiate(cfg.model).eval()


@functools.lru_cache(maxsize=None)
def _cached_eod_state_dict(depth, num_classes, seed, num_anchors, release_010):
    layout = eod_improved_baseline_layout(depth=depth, num_classes=num_classes,
                                          num_anchors=num_anchors, release_010=release_010)
    return random_eod_state_dict(layout, seed=seed)


def eod_state_dict(depth=50, num_classes=1203, seed=0, num_anchors=2, release_010=False):
    """A random reference state dict (a fresh dict; the tensors are shared, never modify them
    in place)."""
    return OrderedDict(_cached_eod_state_dict(depth, num_classes, seed, num_anchors, release_010))


@pytest.fixture(scope="module")
def r50():
    """The full R50 config's model with a converted random reference checkpoint loaded through
    DetectionCheckpointer from a file, and the reference state dict it came from."""
    eod = eod_state_dict(50)
    model = config_model(R50_CONFIG)
    conversion = convert_eod_checkpoint({"model": eod})
    return model, eod, conversion


def test_reference_layout_has_the_key_counts_of_the_released_files():
    # 367 keys at the reference's HEAD, 373 in files of its 0.1.0 code (six stem aliases).
    assert len(eod_improved_baseline_layout(50)) == 367
    assert len(eod_improved_baseline_layout(50, release_010=True)) == 373


def test_r50_file_loads_into_the_r50_config_with_no_missing_unexpected_or_misshaped_key(r50, tmp_path):
    model, eod, conversion = r50
    assert conversion.info.size == "R50" and conversion.info.family == "improved_baseline"
    assert conversion.info.config == "configs/efl_improved_baseline_r50_2x_rfs.py"
    assert conversion.info.num_classes == 1203 and conversion.info.num_anchors == 2
    assert conversion.info.overrides == []
    ours = model.state_dict()
    assert set(conversion.state_dict) == set(ours)
    for key, value in ours.items():
        assert tuple(conversion.state_dict[key].shape) == tuple(value.shape), key
    check_against_model(conversion.state_dict, conversion.info, ours)  # does not raise

    path = tmp_path / "converted.pth"
    torch.save(conversion.detectron2_checkpoint(), path)
    DetectionCheckpointer(model).load(str(path))
    for key, value in model.state_dict().items():
        assert torch.equal(value, conversion.state_dict[key]), key
    # A strict load raises on any missing or unexpected key.
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(saved["model"], strict=True)
    assert saved["matching_config"] == "configs/efl_improved_baseline_r50_2x_rfs.py"


def test_named_weights_land_where_the_reference_uses_them(r50):
    _, eod, conversion = r50
    sd = conversion.state_dict
    # Hand-written pairs: stem, a bottleneck's BN (the reference's trainable FrozenBN weight/bias
    # stay trainable, FrozenStatisticsBatchNorm2d), a shortcut, the FPN, the head, the loss.
    pairs = {
        "backbone.bottom_up.stem.conv1.weight": "backbone.layer0.0.weight",
        "backbone.bottom_up.stem.conv1.norm.running_var": "backbone.layer0.1.running_var",
        "backbone.bottom_up.res3.0.conv2.norm.weight": "backbone.layer2.0.bn2.weight",
        "backbone.bottom_up.res4.5.conv3.norm.bias": "backbone.layer3.5.bn3.bias",
        "backbone.bottom_up.res5.0.shortcut.weight": "backbone.layer4.0.downsample.0.weight",
        "backbone.bottom_up.res5.0.shortcut.norm.running_mean": "backbone.layer4.0.downsample.1.running_mean",
        "backbone.fpn_lateral5.bias": "neck.c5_lateral.bias",
        "backbone.fpn_output3.weight": "neck.p3_conv.weight",
        "backbone.top_block.p6.weight": "neck.p6_conv.weight",
        "backbone.top_block.p7.bias": "neck.p7_conv.bias",
        "head.cls_subnet.9.weight": "roi_head.cls_subnet.9.weight",
        "head.bbox_subnet.10.bias": "roi_head.box_subnet.10.bias",
        "head.cls_score.weight": "roi_head.cls_subnet_pred.weight",
        "head.bbox_pred.bias": "roi_head.box_subnet_pred.bias",
        "head.iou_pred.weight": "roi_head.iou_pred.weight",
        "cls_loss.pos_grad": "post_process.cls_loss.pos_grad",
        "cls_loss.neg_grad": "post_process.cls_loss.neg_grad",
        "cls_loss.pos_neg": "post_process.cls_loss.pos_neg",
    }
    for ours, ref in pairs.items():
        assert torch.equal(sd[ours], eod[ref]), (ours, ref)
    # The reference's tower convs have no bias, nor have those of the improved-baseline configs.
    for tower in ("cls_subnet", "bbox_subnet"):
        for i in (0, 3, 6, 9):
            assert f"head.{tower}.{i}.bias" not in sd and f"head.{tower}.{i}.weight" in sd
    assert not any(k.endswith("num_batches_tracked") for k in sd)


def _max_relative_error(ours, ref):
    """max |ours - ref| over the map, in units of the reference map's standard deviation."""
    return float((ours - ref).abs().max() / ref.std())


@torch.no_grad()
def test_converted_model_computes_the_reference_head_outputs_on_every_level(r50):
    model, eod, conversion = r50
    model.load_state_dict(conversion.state_dict)
    image = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    features = model.backbone(image)
    ours = model.head([features[f] for f in model.head_in_features])
    ref = eod_improved_baseline_forward(eod, image, depth=50)
    for name, ours_maps, ref_maps in zip(("cls", "box", "iou"), ours, ref):
        assert len(ours_maps) == len(ref_maps) == 5
        for level, (o, r) in enumerate(zip(ours_maps, ref_maps)):
            assert o.shape == r.shape, (name, level)
            assert r.std() > 1e-3, (name, level)  # the maps are not degenerate
            assert _max_relative_error(o, r) < 1e-4, (name, level)


@torch.no_grad()
def test_a_class_major_channel_layout_would_change_the_class_outputs(r50):
    # The converter keeps the file's anchor-major layout (channel = a*C + c). Had it permuted
    # the classification conv to class-major (channel = c*A + a), the outputs would differ.
    model, eod, conversion = r50
    sd = OrderedDict(conversion.state_dict)
    num_anchors, num_classes = 2, 1203
    perm = torch.arange(num_anchors * num_classes).view(num_anchors, num_classes).t().reshape(-1)
    sd["head.cls_score.weight"] = sd["head.cls_score.weight"][perm]
    sd["head.cls_score.bias"] = sd["head.cls_score.bias"][perm]
    model.load_state_dict(sd)
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    features = model.backbone(image)
    ours = model.head([features[f] for f in model.head_in_features])[0]
    ref = eod_improved_baseline_forward(eod, image, depth=50)[0]
    assert min(_max_relative_error(o, r) for o, r in zip(ours, ref)) > 0.1
    model.load_state_dict(conversion.state_dict)


def test_preprocessing_equals_the_reference_normalisation(r50):
    # Reference: RGB, (x / 255 - mean) / std with ImageNet mean/std.
    model = r50[0]
    assert model.input_format == "RGB"
    image = torch.randint(0, 256, (3, 64, 64)).float()
    ours = model.preprocess_image([{"image": image}]).tensor[0, :, :64, :64]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    torch.testing.assert_close(ours, (image / 255 - mean) / std, rtol=1e-5, atol=1e-5)


def test_r101_is_told_from_r50_by_its_block_counts_and_fits_the_r101_config():
    eod = eod_state_dict(101, num_classes=1203)
    conversion = convert_eod_checkpoint(eod)
    assert conversion.info.size == "R101"
    assert conversion.info.config == "configs/efl_improved_baseline_r101_2x_rfs.py"
    model = config_model(R101_CONFIG)
    check_against_model(conversion.state_dict, conversion.info, model.state_dict())
    model.load_state_dict(conversion.state_dict, strict=True)


def _small(**kwargs):
    return eod_state_dict(50, num_classes=3, **kwargs)


def _prefixed(sd):
    return OrderedDict((f"module.{k}", v) for k, v in sd.items())


def test_every_file_layout_converts_to_the_same_weights():
    eod = _small()
    ema = _small(seed=1)  # different values, same layout
    expected = convert_eod_state_dict(eod)[0]
    expected_ema = convert_eod_state_dict(ema)[0]
    aliased = _small(release_010=True)
    assert len(aliased) == len(eod) + 6
    training_state = {"optimizer": {"state": {}}, "epoch": 24, "iter": 188280}
    layouts = {
        "bare state dict": (eod, None, expected),
        "model entry": ({"model": eod, **training_state}, None, expected),
        "state_dict entry": ({"state_dict": eod}, None, expected),
        "module. prefixes": ({"model": _prefixed(eod), **training_state}, None, expected),
        "bare with module.": (_prefixed(eod), None, expected),
        "0.1.0 stem aliases": ({"model": aliased}, None, expected),
        "EMA by default": ({"model": _prefixed(eod), "ema": {"ema_state_dict": ema, "decay": 0.9998}},
                           None, expected_ema),
        "EMA asked for": ({"model": eod, "ema": {"ema_state_dict": ema}}, "ema", expected_ema),
        "--weights model": ({"model": _prefixed(eod), "ema": {"ema_state_dict": ema}}, "model",
                            expected),
    }
    for name, (checkpoint, weights, want) in layouts.items():
        got = convert_eod_checkpoint(checkpoint, weights=weights).state_dict
        assert list(got) == list(want), name
        for key in want:
            assert torch.equal(got[key], want[key]), (name, key)


def test_conversion_reports_where_the_weights_came_from():
    eod, ema = _small(), _small(seed=1)
    assert convert_eod_checkpoint({"model": eod, "ema": {"ema_state_dict": ema}}).source == "ema.ema_state_dict"
    assert convert_eod_checkpoint({"model": eod}).source == "model"
    with pytest.raises(EODCheckpointError, match="no 'ema' entry"):
        convert_eod_checkpoint({"model": eod}, weights="ema")


def test_a_stem_alias_that_differs_from_the_stem_is_refused():
    eod = _small(release_010=True)
    eod["backbone.bn1.running_mean"] = eod["backbone.bn1.running_mean"] + 1
    with pytest.raises(EODCheckpointError, match=r"backbone\.bn1\.running_mean.*backbone\.layer0\.1\.running_mean"):
        convert_eod_state_dict(eod)


def test_unknown_keys_are_refused_with_the_list_of_them():
    eod = _small()
    eod["roi_head.centerness_pred.weight"] = torch.zeros(2, 256, 3, 3)
    eod["neck.p8_conv.weight"] = torch.zeros(256, 256, 3, 3)
    eod["backbone.layer2.0.bn2.num_batches_tracked_extra"] = torch.zeros(())
    with pytest.raises(EODCheckpointError) as err:
        convert_eod_state_dict(eod)
    message = str(err.value)
    assert "3 keys have no place" in message
    for key in ("roi_head.centerness_pred.weight", "neck.p8_conv.weight",
                "backbone.layer2.0.bn2.num_batches_tracked_extra"):
        assert key in message


def test_a_counter_without_its_batch_norm_is_not_dropped_silently():
    eod = _small()
    eod["roi_head.stray.num_batches_tracked"] = torch.tensor(3)
    with pytest.raises(EODCheckpointError, match=r"roi_head\.stray\.num_batches_tracked"):
        convert_eod_state_dict(eod)


def test_missing_and_misshaped_keys_are_named_in_both_layouts(r50):
    model = r50[0]
    eod = eod_state_dict(50)
    del eod["backbone.layer3.5.bn2.running_var"]
    eod["neck.p6_conv.weight"] = torch.zeros(256, 256, 1, 1)
    converted, info = convert_eod_state_dict(eod)
    with pytest.raises(EODCheckpointError) as err:
        check_against_model(converted, info, model.state_dict())
    message = str(err.value)
    assert "backbone.bottom_up.res4.5.conv2.norm.running_var (reference: backbone.layer3.5.bn2.running_var)" in message
    assert "backbone.top_block.p6.weight (reference: neck.p6_conv.weight): file (256, 256, 1, 1)" in message


def test_sizes_without_a_config_are_refused():
    eod = _small()
    # A ResNet-34-like block count and a stage with a gap in its block indices.
    del_keys = [k for k in eod if k.startswith("backbone.layer3.5.")]
    with pytest.raises(EODCheckpointError, match=r"\[3, 4, 5, 3\] blocks per stage"):
        convert_eod_state_dict({k: v for k, v in eod.items() if k not in del_keys})
    gap = [k for k in eod if k.startswith("backbone.layer3.2.")]
    with pytest.raises(EODCheckpointError, match=r"backbone\.layer3 has blocks \[0, 1, 3, 4, 5\]"):
        convert_eod_state_dict({k: v for k, v in eod.items() if k not in gap})
    three_anchors = eod_state_dict(50, num_classes=3, num_anchors=3)
    with pytest.raises(EODCheckpointError, match="3 anchors per location"):
        convert_eod_state_dict(three_anchors)


def test_not_a_reference_checkpoint_is_refused_with_its_key_prefixes():
    with pytest.raises(EODCheckpointError, match=r"backbone\.res2"):
        convert_eod_state_dict({"backbone.res2.conv1.weight": torch.zeros(1)})
    with pytest.raises(EODCheckpointError, match="found no state dict"):
        convert_eod_checkpoint({"epoch": 3, "optimizer": {}})


def test_cli_converts_prints_family_size_classes_and_config(tmp_path):
    # Another class count: the converter finds it and names the config override it needs.
    eod = eod_state_dict(50, num_classes=7)
    src = tmp_path / "efl_improved_baseline_r50.pth"
    torch.save({"model": _prefixed(eod), "epoch": 24}, src)
    dst = tmp_path / "out" / "converted.pth"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "convert_eod_checkpoint.py"), str(src), str(dst)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "family: improved_baseline" in out and "size: R50" in out and "classes: 7" in out
    assert "config: configs/efl_improved_baseline_r50_2x_rfs.py model.num_classes=7" in out
    # the evaluation command carries the reference's inference (test resize, post-processing)
    inference = "model.eod_inference=improved_baseline dataloader.test.mapper.opencv_resize=True"
    assert f"--eval-only train.init_checkpoint={dst} model.num_classes=7 {inference}" in out
    saved = torch.load(dst, map_location="cpu", weights_only=True)
    assert saved["matching_overrides"] == ["model.num_classes=7"] + inference.split()
    model = config_model(R50_CONFIG, "model.num_classes=7")
    DetectionCheckpointer(model).load(str(dst))
    assert torch.equal(model.head.cls_score.weight, eod["roi_head.cls_subnet_pred.weight"])


def test_cli_fails_with_the_offending_keys_on_a_broken_file(tmp_path):
    eod = _small()
    eod["roi_head.extra.weight"] = torch.zeros(1)
    src = tmp_path / "broken.pth"
    torch.save({"model": eod}, src)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "convert_eod_checkpoint.py"), str(src),
         str(tmp_path / "out.pth")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "roi_head.extra.weight" in proc.stderr and "broken.pth" in proc.stderr
    assert not (tmp_path / "out.pth").exists()


def test_converted_file_evaluates_with_train_net_eval_only_and_prints_the_lvis_table(tmp_path):
    from ..engine.tiny_lvis import CATEGORIES, write_tiny_lvis

    data = tmp_path / "tiny_lvis"
    write_tiny_lvis(str(data))
    src, dst = tmp_path / "efl_improved_baseline_r50.pth", tmp_path / "converted.pth"
    torch.save({"model": _prefixed(eod_state_dict(50, num_classes=len(CATEGORIES)))}, src)
    convert = subprocess.run(
        [sys.executable, "tools/convert_eod_checkpoint.py", str(src), str(dst)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert convert.returncode == 0, convert.stdout + convert.stderr
    # with the overrides the converter recorded: the reference's test resize and post-processing
    recorded = torch.load(dst, map_location="cpu", weights_only=True)["matching_overrides"]
    assert "model.eod_inference=improved_baseline" in recorded
    proc = subprocess.run(
        [sys.executable, "tools/train_net.py", "--config-file",
         "tests/tools/released_model_eval_config.py", "--eval-only",
         f"train.init_checkpoint={dst}", f"train.output_dir={tmp_path / 'eval'}", *recorded],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "EFL_TEST_TINY_LVIS": str(data), "OMP_NUM_THREADS": "1"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    # Detectron2's print_csv_format: the LVIS metrics, APr/APc/APf included.
    assert "copypaste: AP,AP50,AP75,APs,APm,APl,APr,APc,APf" in log, log[-3000:]


def test_a_tower_conv_with_a_bias_is_not_a_reference_file():
    # The reference's tower convs have no bias; a file with one is not its head.
    eod = _small()
    eod["roi_head.cls_subnet.3.bias"] = torch.ones(256)
    with pytest.raises(EODCheckpointError, match=r"roi_head\.cls_subnet\.3\.bias"):
        convert_eod_state_dict(eod)


def test_rules_refuse_two_keys_that_would_become_one():
    from efl.checkpoint_conversion import RuleSet

    rules = RuleSet([("a.{n}.weight", "x.{n}.weight"), ("b.{n}.weight", "x.{n}.weight")])
    assert rules.to_reference("x.3.weight") == "a.3.weight"
    with pytest.raises(ValueError, match=r"'a\.1\.weight' and 'b\.1\.weight' would both become 'x\.1\.weight'"):
        rules.rename({"a.1.weight": 1, "b.1.weight": 2})


def test_files_with_pickled_training_state_still_load(tmp_path):
    # The reference's files pickle more than tensors (e.g. its config); the safe loader refuses
    # such objects and the file is then read in full.
    import argparse

    from efl.checkpoint_conversion import load_eod_file

    path = tmp_path / "with_config.pth"
    torch.save({"model": _small(), "cfg": argparse.Namespace(lr=0.02)}, path)
    loaded = load_eod_file(str(path))
    assert loaded["cfg"].lr == 0.02
    assert convert_eod_checkpoint(loaded).info.size == "R50"
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        load_eod_file(str(tmp_path / "absent.pth"))
