"""YOLOX-IP optimisation: the parameter groups and the learning-rate schedule, against hand-computed
values and an iteration-based transcription of the reference's schedule."""
import math
from pathlib import Path

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.solver import LRMultiplier
from torch import nn

from efl.engine.yolox_optim import YOLOXCosineParamScheduler, yolox_param_groups

REPO = Path(__file__).resolve().parents[2]


class _Head(nn.Module):
    """The YOLOX-IP head's parameter names, one level."""

    def __init__(self):
        super().__init__()
        self.stems = nn.ModuleList([nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4))])
        self.cls_preds = nn.ModuleList([nn.Conv2d(4, 6, 1)])
        self.reg_preds = nn.ModuleList([nn.Conv2d(4, 8, 1)])
        self.obj_preds = nn.ModuleList([nn.Conv2d(4, 2, 1)])


class _Detector(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
        self.head = _Head()


def _by_id(params):
    return {id(p) for p in params}


def test_cls_preds_bias_is_decayed_and_bn_params_and_other_biases_are_not():
    model = _Detector()
    decayed, others = yolox_param_groups(model, weight_decay=5e-4, decayed_bias_modules=[r"head\.cls_preds\.\d+"])
    assert decayed["weight_decay"] == 5e-4 and others["weight_decay"] == 0.0
    h, b = model.head, model.backbone
    expected_decayed = [b[0].weight, b[2].weight, h.stems[0][0].weight, h.cls_preds[0].weight,
                        h.cls_preds[0].bias, h.reg_preds[0].weight, h.obj_preds[0].weight]
    expected_others = [b[1].weight, b[1].bias, b[2].bias, h.stems[0][1].weight, h.stems[0][1].bias,
                       h.reg_preds[0].bias, h.obj_preds[0].bias]
    assert _by_id(decayed["params"]) == _by_id(expected_decayed)
    assert _by_id(others["params"]) == _by_id(expected_others)
    assert len(decayed["params"]) + len(others["params"]) == len(list(model.parameters()))


def test_sgd_with_the_groups_shrinks_exactly_the_decayed_parameters():
    model = _Detector()
    groups = yolox_param_groups(model, weight_decay=0.5, decayed_bias_modules=[r"head\.cls_preds\.\d+"])
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for name, p in model.named_parameters():
        # zero gradient: only the decay term moves a parameter; Nesterov SGD's first step is
        # p - lr * (1 + momentum) * wd * p
        decayed = name.endswith("weight") and "backbone.1" not in name and "stems.0.1" not in name
        decayed |= name == "head.cls_preds.0.bias"
        expected = before[name] * (1 - 0.1 * 1.9 * 0.5) if decayed else before[name]
        torch.testing.assert_close(p.detach(), expected, msg=name)


def test_pattern_matching_no_module_or_a_module_without_bias_is_refused():
    with pytest.raises(ValueError, match="match no module"):
        yolox_param_groups(_Detector(), weight_decay=5e-4, decayed_bias_modules=[r"roi_head\.cls_preds\.\d+"])
    with pytest.raises(ValueError, match="has no bias"):
        yolox_param_groups(_Detector(), weight_decay=5e-4, decayed_bias_modules=[r"head\.stems\.0\.0"])


def test_frozen_and_shared_parameters_are_left_out_or_listed_once():
    model = _Detector()
    model.backbone[0].weight.requires_grad_(False)
    model.head.reg_preds.append(model.head.obj_preds[0])  # the same conv under two names
    decayed, others = yolox_param_groups(model, weight_decay=5e-4, decayed_bias_modules=[r"head\.cls_preds\.\d+"])
    params = decayed["params"] + others["params"]
    assert id(model.backbone[0].weight) not in _by_id(params)
    assert len(params) == len(_by_id(params)) == len(list(model.parameters())) - 1


def _reference_lr(iteration, *, base_lr, epoch_iters, total_epochs=300, warmup_epochs=5, no_aug_epochs=15,
                  min_lr_scale=0.05):
    """The reference's yolox_cos warm-up and YoloXCosineLR, written per iteration."""
    warmup_iters = warmup_epochs * epoch_iters
    total_iters = total_epochs * epoch_iters
    no_aug_iters = no_aug_epochs * epoch_iters
    if iteration < warmup_iters:
        return base_lr * (iteration / warmup_iters) ** 2
    min_lr = base_lr * min_lr_scale
    if iteration >= total_iters - no_aug_iters:
        return min_lr
    progress = (iteration - warmup_iters) / (total_iters - warmup_iters - no_aug_iters)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def _lrs_through_detectron2(multiplier, max_iter, base_lr):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = LRMultiplier(optimizer, multiplier, max_iter)
    lrs = []
    for _ in range(max_iter):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_schedule_at_hand_computed_iterations():
    epoch_iters, base_lr = 10, 0.04
    max_iter = 300 * epoch_iters
    lrs = _lrs_through_detectron2(YOLOXCosineParamScheduler(), max_iter, base_lr)
    assert lrs[0] == 0.0  # warm-up starts from 0
    assert lrs[25] == pytest.approx(0.04 * 0.25)  # half the warm-up: (1/2)^2
    assert lrs[50] == pytest.approx(0.04)  # warm-up end = cosine start
    assert lrs[50 + 1400] == pytest.approx(0.04 * 0.525)  # mid-cosine: 0.05 + 0.95 / 2
    assert lrs[2850] == pytest.approx(0.002)  # start of the last 15 epochs: 0.05 x lr
    assert lrs[2849] == pytest.approx(0.002, rel=1e-5)  # continuous there
    assert lrs[-1] == pytest.approx(0.002)  # end


def test_schedule_matches_the_reference_at_every_iteration():
    epoch_iters, base_lr = 7, 0.04
    max_iter = 300 * epoch_iters
    lrs = _lrs_through_detectron2(YOLOXCosineParamScheduler(), max_iter, base_lr)
    expected = [_reference_lr(i, base_lr=base_lr, epoch_iters=epoch_iters) for i in range(max_iter)]
    for i, (got, want) in enumerate(zip(lrs, expected)):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-15), i


def test_schedule_refuses_warmup_and_constant_longer_than_training():
    with pytest.raises(ValueError, match="leave room"):
        YOLOXCosineParamScheduler(total_epochs=20, warmup_epochs=5, constant_epochs=15)


def test_config_optimizer_on_the_yolox_ip_model_decays_its_three_cls_biases():
    cfg = LazyConfig.load(str(REPO / "configs/efl_yolox_ip_s_300e_rfs.py"))
    cfg.model.num_classes = 8
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["lr"] == pytest.approx(0.04)
    decayed, others = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed_biases = sorted(names[id(p)] for p in decayed["params"] if names[id(p)].endswith("bias"))
    assert decayed_biases == [f"head.cls_preds.{i}.bias" for i in range(3)]
    assert decayed["weight_decay"] == 5e-4 and others["weight_decay"] == 0.0
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert bn_params and bn_params <= _by_id(others["params"])
    assert len(decayed["params"]) + len(others["params"]) == len(list(model.parameters()))
