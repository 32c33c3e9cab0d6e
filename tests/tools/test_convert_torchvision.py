"""tools/convert_torchvision_to_d2.py: a torchvision ResNet-50 becomes the LVIS config's Detectron2
ResNet-50 with exactly its keys, and computes the same features (eval BatchNorm vs FrozenBN)."""
import os
import pickle

import pytest
import torch
import torchvision

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate

from tests.scripts import load_script

HERE = os.path.dirname(__file__)
CONFIG = os.path.join(HERE, "..", "..", "configs", "efl_improved_baseline_r50_2x_rfs.py")


def load_tool():
    return load_script("tools/convert_torchvision_to_d2.py")


@pytest.fixture(scope="module")
def torchvision_r50(tmp_path_factory):
    torch.manual_seed(0)
    net = torchvision.models.resnet50(weights=None).eval()
    # Random BatchNorm statistics and affine terms, so that a wrong mapping or eps shows.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    path = str(tmp_path_factory.mktemp("tv") / "resnet50.pth")
    torch.save(net.state_dict(), path)
    return net, path


def config_backbone():
    cfg = LazyConfig.load(CONFIG)
    return instantiate(cfg.model.backbone).eval()


def test_converted_keys_are_exactly_the_config_resnet_50s(torchvision_r50, tmp_path, capsys):
    _, path = torchvision_r50
    out = str(tmp_path / "R-50.pkl")
    load_tool().main([path, out])
    assert "fc.weight, fc.bias" in capsys.readouterr().out
    with open(out, "rb") as f:
        checkpoint = pickle.load(f)
    assert checkpoint["matching_heuristics"] is True
    bottom_up = config_backbone().bottom_up
    assert set(checkpoint["model"]) == set(bottom_up.state_dict())
    weights = {k: torch.from_numpy(v) for k, v in checkpoint["model"].items()}
    result = bottom_up.load_state_dict(weights, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_detectron2s_checkpointer_loads_it_into_the_backbone_with_the_same_features(torchvision_r50, tmp_path):
    net, path = torchvision_r50
    out = str(tmp_path / "R-50.pkl")
    load_tool().main([path, out])
    backbone = config_backbone()
    DetectionCheckpointer(backbone).load(out)  # finds the keys under bottom_up. by suffix
    for name, value in backbone.bottom_up.state_dict().items():
        assert value.abs().sum() > 0, name  # every weight was loaded (fresh FrozenBN has zero means)

    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ours = backbone.bottom_up(x)
        y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        expected = {}
        for stage, layer in zip(("res2", "res3", "res4", "res5"), (net.layer1, net.layer2, net.layer3, net.layer4)):
            y = layer(y)
            expected[stage] = y
    assert set(ours) == {"res3", "res4", "res5"}
    for stage, feature in ours.items():
        torch.testing.assert_close(feature, expected[stage], rtol=1e-4, atol=1e-4)


def test_a_file_that_is_not_a_torchvision_resnet_is_an_error(tmp_path):
    path = str(tmp_path / "other.pth")
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(SystemExit, match="is not a torchvision ResNet state_dict"):
        load_tool().main([path, str(tmp_path / "out.pkl")])
    assert not os.path.exists(tmp_path / "out.pkl")


@pytest.mark.parametrize("content,message", [
    ("module", "holds Python objects"),
    ("garbage", "is not a checkpoint"),
    ("empty", "is not a checkpoint"),
])
def test_a_pickled_module_or_a_garbage_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if content == "module":
        torch.save(torch.nn.Linear(2, 2), path)  # the whole model instead of its state_dict
    elif content == "garbage":
        path.write_bytes(b"this is not a checkpoint\n" * 10)
    else:
        path.write_bytes(b"")
    with pytest.raises(SystemExit) as error:
        load_tool().main([str(path), str(tmp_path / "out.pkl")])
    text = str(error.value)
    assert message in text and str(path) in text and "\n" not in text and "weights_only" not in text
    assert not os.path.exists(tmp_path / "out.pkl")
