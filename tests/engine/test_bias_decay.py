"""The classification-bias weight decay that drives EFL's gradient ratio (docs/method.md §8): the
bias identity checked against torch's SGD, the demo's compression rule against the LVIS configs,
and the start-up warning."""
import logging
import os

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import HookBase, SimpleTrainer
from torch import nn

from efl.engine import add_full_model_gradient_clipping
from efl.engine.bias_decay import (
    LVIS_RECIPES,
    check_bias_decay,
    classifier_biases,
    integrated_bias_decay,
    matching_integrated_weight_decay,
)
from efl.engine.bias_ledger import ClassifierBiasLedger
from efl.engine.optimizer import params_with_classifier_bias_decay
from efl.losses import EqualizedFocalLoss, find_equalized_losses

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES, NUM_ANCHORS = 5, 2


class ToyDetectorHead(nn.Module):
    """A trunk conv, a `head.cls_score` conv with A x C anchor-major outputs and EFL on its
    flattened logits: the classification path of the improved baseline, without boxes."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Conv2d(4, 8, 3, padding=1)
        self.head = nn.Module()
        self.head.cls_score = nn.Conv2d(8, NUM_ANCHORS * NUM_CLASSES, 3, padding=1)
        nn.init.constant_(self.head.cls_score.bias, -4.0)
        self.cls_loss = EqualizedFocalLoss(num_classes=NUM_CLASSES, gamma_b=2.0, scale_factor=8.0, alpha=0.25)

    def forward(self, batch):
        features, labels = batch
        logits = self.head.cls_score(torch.relu(self.trunk(features)))  # (N, A*C, H, W)
        n, _, h, w = logits.shape
        # anchor-major channels a * C + c, as Detectron2's permute_to_N_HWA_K
        logits = logits.view(n, NUM_ANCHORS, NUM_CLASSES, h, w).permute(0, 3, 4, 1, 2).reshape(-1, NUM_CLASSES)
        normalizer = max(float((labels < NUM_CLASSES).sum()), 1.0)
        return {"loss_cls": self.cls_loss(logits, labels, normalizer)}


def toy_batches(seed):
    generator = torch.Generator().manual_seed(seed)
    while True:
        features = torch.randn(2, 4, 6, 6, generator=generator)
        labels = torch.full((2 * 6 * 6 * NUM_ANCHORS,), NUM_CLASSES)  # background
        positives = torch.randperm(labels.numel(), generator=generator)[:6]
        # classes 0 and 1 frequent, class 4 never seen: a long tail in miniature
        labels[positives] = torch.tensor([0, 0, 0, 1, 1, 2])[torch.randperm(6, generator=generator)]
        yield features, labels


class SkippingSGD(torch.optim.SGD):
    """SGD that does not step at the listed calls, as AMP's GradScaler on an overflow."""

    def __init__(self, *args, skip=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.skip, self.calls = set(skip), 0

    def step(self, closure=None):
        self.calls += 1
        if self.calls - 1 not in self.skip:
            return super().step(closure)


def train_with_ledger(*, momentum, nesterov, weight_decay, clip=None, lr=0.05, iters=30, warmup_from_zero=False,
                      skip=()):
    torch.manual_seed(0)
    model = ToyDetectorHead()
    optimizer = SkippingSGD(model.parameters(), lr=lr, momentum=momentum, nesterov=nesterov,
                            weight_decay=weight_decay, skip=skip)
    if clip:
        optimizer = add_full_model_gradient_clipping(optimizer, max_norm=clip)
    trainer = SimpleTrainer(model, toy_batches(0), optimizer)
    ledger = ClassifierBiasLedger(model, optimizer, model.cls_loss, output_dir=None, clip_max_norm=clip)
    hooks = [ledger]
    if warmup_from_zero:  # the first step at lr 0, as YOLOX-IP's quadratic warm-up starts
        class Warmup(HookBase):
            def before_step(self):
                for g in optimizer.param_groups:
                    g["lr"] = lr * min(1.0, self.trainer.iter / 5)
        hooks = [Warmup(), ledger]
    trainer.register_hooks(hooks)
    trainer.train(0, iters)
    return ledger.terms()


def scale(terms):
    return max(float(terms["weight_decay_pull"].abs().max()), float(terms["displacement"].abs().max()))


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_statistics_equal_displacement_plus_weight_decay_pull_of_the_sgd_trajectory(momentum, nesterov):
    terms = train_with_ledger(momentum=momentum, nesterov=nesterov, weight_decay=0.05)
    # the loss's statistics (analytic |dL/dx| by sign) against torch's SGD updates of the bias
    assert terms["residual"].abs().max() <= 1e-5 * scale(terms)
    assert torch.allclose(terms["displacement_trajectory"], terms["displacement"], atol=1e-3 * scale(terms))
    assert float(terms["clipped"].abs().max()) == 0.0
    # class 4 has no positive: all of its statistic is negative gradient
    assert float(terms["positive"][4]) == 0.0 and float(terms["negative"][4]) > 0


def test_identity_holds_with_clipping_and_a_step_at_lr_zero():
    terms = train_with_ledger(momentum=0.9, nesterov=True, weight_decay=0.05, clip=0.05, warmup_from_zero=True)
    assert float(terms["clipped"].abs().max()) > 0.1 * scale(terms)  # clipping did remove gradient
    assert terms["residual"].abs().max() <= 1e-5 * scale(terms)


def test_skipped_steps_are_accounted_for():
    """An optimizer step skipped after the loss counted its gradient (AMP overflow) goes to the
    skipped term; without it the identity would be off by that step's statistics."""
    terms = train_with_ledger(momentum=0.9, nesterov=False, weight_decay=0.05, skip=(0, 7, 8))
    assert float(terms["skipped"].abs().max()) > 0.01 * scale(terms)
    assert terms["residual"].abs().max() <= 1e-5 * scale(terms)


def test_without_the_momentum_term_the_identity_fails():
    """The test can fail: reading the displacement as sum_t v_t (ignoring momentum) leaves a
    residual of the size of the terms."""
    terms = train_with_ledger(momentum=0.9, nesterov=False, weight_decay=0.05)
    wrong = terms["negative_minus_positive"] - (terms["displacement"] / 0.1 + terms["weight_decay_pull"])
    assert wrong.abs().max() > 100 * terms["residual"].abs().max()


def test_weight_decay_pull_drives_the_rare_class_ratio_below_one():
    """With the bias decayed, N_j - P_j is mostly the pull, the same for every class: the class with
    the fewest positives ends with the lowest ratio, and the pull is what makes it fall."""
    decayed = train_with_ledger(momentum=0.9, nesterov=False, weight_decay=0.2, iters=40)
    ratio = decayed["positive"] / decayed["negative"]
    assert ratio[2] < ratio[0]  # class 2 (1 positive per batch) below class 0 (3 per batch)
    pull = decayed["weight_decay_pull"]
    assert float(pull.min()) > 0  # biases are negative, the pull adds negative gradient
    assert torch.all(pull[:3] > decayed["displacement"][:3].abs())


def test_matching_integrated_weight_decay_keeps_lambda_times_iterations():
    assert matching_integrated_weight_decay(1e-4, 188_280, 1500) * 1500 == pytest.approx(1e-4 * 188_280)
    assert matching_integrated_weight_decay(5e-4, 234_900, 1200) == pytest.approx(0.097875)
    with pytest.raises(ValueError):
        matching_integrated_weight_decay(1e-4, 188_280, 0)


def _optimizer(config, overrides=()):
    cfg = LazyConfig.apply_overrides(LazyConfig.load(os.path.join(REPO, config)), list(overrides))
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    return cfg, model, instantiate(cfg.optimizer)


@pytest.mark.parametrize("demo,recipe,family,other_decays", [
    ("configs/demo/efl_synthetic_small.py", "configs/efl_improved_baseline_r50_2x_rfs.py", "improved baseline", {1e-4}),
    ("configs/demo/focal_yolox_ip_nano_synthetic.py", "configs/efl_yolox_ip_s_300e_rfs.py", "YOLOX-IP", {5e-4, 0.0}),
])
def test_demo_keeps_the_lvis_recipes_integrated_classification_bias_decay(demo, recipe, family, other_decays):
    recipe_cfg, recipe_model, recipe_optimizer = _optimizer(recipe)
    recipe_decay = integrated_bias_decay(recipe_optimizer, classifier_biases(recipe_model), recipe_cfg.train.max_iter)
    # the LVIS configs are the recipe: every classification bias decayed at the recipe's lambda
    expected = LVIS_RECIPES[family]["weight_decay"] * LVIS_RECIPES[family]["max_iter"]
    assert list(recipe_decay.values()) == pytest.approx([expected] * len(recipe_decay))
    assert recipe_cfg.train.max_iter == LVIS_RECIPES[family]["max_iter"]
    for overrides in ([], ["train.max_iter=600"]):
        cfg, model, optimizer = _optimizer(demo, overrides)
        decay = integrated_bias_decay(optimizer, classifier_biases(model), cfg.train.max_iter)
        assert list(decay.values()) == pytest.approx([expected] * len(decay)), overrides
    # every other parameter keeps the recipe's decay (YOLOX-IP: none on BN and the other biases)
    biases = {id(b) for _, b in classifier_biases(model)}
    others = {g["weight_decay"] for g in optimizer.param_groups if not any(id(p) in biases for p in g["params"])}
    assert others == other_decays


def test_classifier_bias_group_is_split_from_detectron2_groups():
    model = ToyDetectorHead()
    groups = params_with_classifier_bias_decay(model, weight_decay=1e-4, classifier_bias_weight_decay=0.3)
    bias = model.head.cls_score.bias
    assert [g["weight_decay"] for g in groups if any(p is bias for p in g["params"])] == [0.3]
    listed = [p for g in groups for p in g["params"]]
    assert len(listed) == len(list(model.parameters())) == len({id(p) for p in listed})


def test_warning_when_an_engaged_equalized_loss_gets_no_bias_decay(caplog):
    model = ToyDetectorHead()
    undecayed = torch.optim.SGD(params_with_classifier_bias_decay(
        model, weight_decay=1e-4, classifier_bias_weight_decay=0.0), lr=0.01)
    with caplog.at_level(logging.INFO, logger="efl.engine.bias_decay"):
        assert check_bias_decay(model, undecayed, 1500, equalized_losses=find_equalized_losses(model)) == 0.0
    assert any(r.levelno == logging.WARNING and "lambda_bias * T = 0" in r.getMessage() for r in caplog.records)

    caplog.clear()
    decayed = torch.optim.SGD(params_with_classifier_bias_decay(
        model, weight_decay=1e-4, classifier_bias_weight_decay=matching_integrated_weight_decay(1e-4, 188_280, 1500)), lr=0.01)
    with caplog.at_level(logging.INFO, logger="efl.engine.bias_decay"):
        assert check_bias_decay(model, decayed, 1500, equalized_losses=find_equalized_losses(model)) == pytest.approx(18.828)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    caplog.clear()
    model.cls_loss.scale_factor = 0.0  # focal loss: the statistics are not used, nothing to say
    with caplog.at_level(logging.INFO, logger="efl.engine.bias_decay"):
        assert check_bias_decay(model, undecayed, 1500, equalized_losses=find_equalized_losses(model)) is None
    assert not caplog.records
