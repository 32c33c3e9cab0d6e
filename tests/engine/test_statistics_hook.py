"""The statistics hook's console line says what the statistics are for: EFL's focusing factors, or,
for focal loss (scale_factor 0), a measurement that changes nothing."""
import logging

import torch
from detectron2.engine import SimpleTrainer
from torch import nn

from efl.engine import EqualizedLossStatistics
from efl.losses import EqualizedFocalLoss


class TinyClassifier(nn.Module):
    def __init__(self, scale_factor):
        super().__init__()
        self.linear = nn.Linear(3, 4)
        self.cls_loss = EqualizedFocalLoss(num_classes=4, gamma_b=2.0, scale_factor=scale_factor, alpha=0.25)

    def forward(self, batch):
        features, labels = batch
        return {"loss_cls": self.cls_loss(self.linear(features), labels, 4.0)}


def console_lines(scale_factor, caplog):
    torch.manual_seed(0)
    model = TinyClassifier(scale_factor)
    data = iter(lambda: (torch.randn(16, 3), torch.randint(0, 5, (16,))), None)
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1))
    groups = {"rare": torch.tensor([3]), "frequent": torch.tensor([0, 1, 2])}
    trainer.register_hooks([EqualizedLossStatistics(model, class_groups=groups, period=2)])
    with caplog.at_level(logging.INFO, logger="efl.engine.statistics"):
        trainer.train(0, 4)
    return [r.getMessage() for r in caplog.records if "efl/g_rare" in r.getMessage()]


def test_focal_runs_say_the_statistics_are_measured_not_used(caplog):
    lines = console_lines(0.0, caplog)
    assert lines and all("focal loss: measured, not used" in line for line in lines)


def test_efl_runs_say_efl_statistics(caplog):
    lines = console_lines(8.0, caplog)
    assert lines and all("EFL statistics" in line and "not used" not in line for line in lines)
