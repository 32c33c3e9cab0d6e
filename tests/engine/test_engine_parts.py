"""The pieces of efl.engine and the common configs, checked against hand-computed values."""
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from detectron2.config import LazyConfig, instantiate

from efl.engine import add_full_model_gradient_clipping
from efl.utils.files import atomic_write

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def test_full_model_clipping_scales_every_gradient_by_max_norm_over_total_norm():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    optimizer = add_full_model_gradient_clipping(torch.optim.SGD([a, b], lr=1.0), max_norm=2.5)
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # total L2 norm 5
    optimizer.step()
    # SGD with lr 1 moves each parameter by -grad * 2.5 / 5.
    torch.testing.assert_close(a.detach(), torch.tensor([-1.5, 0.0]))
    torch.testing.assert_close(b.detach(), torch.tensor([-2.0]))


def test_gradients_below_max_norm_and_disabled_clipping_are_left_alone():
    p = nn.Parameter(torch.zeros(2))
    optimizer = add_full_model_gradient_clipping(torch.optim.SGD([p], lr=1.0), max_norm=35.0)
    p.grad = torch.tensor([3.0, 4.0])
    optimizer.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-3.0, -4.0]))
    plain = torch.optim.SGD([p], lr=1.0)
    assert add_full_model_gradient_clipping(plain, enabled=False, max_norm=1.0).__class__ is torch.optim.SGD


def test_optimizer_config_decays_norm_layers_and_biases_like_every_weight():
    cfg = LazyConfig.load(str(REPO / "configs/common/optim.py"))
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(4, 8), nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1))
    cfg.SGD.params.model = model
    optimizer = instantiate(cfg.SGD)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert len(decay) == len(list(model.parameters()))
    assert set(decay.values()) == {1e-4}
    assert optimizer.defaults["lr"] == 0.02 and optimizer.defaults["momentum"] == 0.9


def _load_schedules():
    return load_script("configs/common/schedules.py")


def test_lvis_2x_schedule_warms_up_one_epoch_and_decays_at_epochs_16_and_22():
    schedules = _load_schedules()
    assert schedules.lvis_v1_rfs_2x_max_iter == 24 * 7845  # 24 epochs of ceil(125515 / 16)
    max_iter, multiplier = schedules.rfs_schedule(16 * 10, epochs=24)  # 10 iterations per epoch
    assert max_iter == 240
    lr = instantiate(multiplier)
    expected = {0: 0.001, 5: 0.001 + 0.999 * 0.5, 10: 1.0, 159: 1.0, 160: 0.1, 219: 0.1, 220: 0.01, 239: 0.01}
    for iteration, value in expected.items():
        assert lr(iteration / max_iter) == pytest.approx(value), iteration


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "last_checkpoint"
    atomic_write(str(path), lambda f: f.write("model_0000009.pth"), mode="w")

    def crash(f):
        f.write("model_00")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(path), crash, mode="w")
    assert path.read_text() == "model_0000009.pth"
    assert os.listdir(tmp_path) == ["last_checkpoint"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
