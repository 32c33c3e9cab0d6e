"""A YOLOX-IP config run with a train.max_iter shorter than its no-augmentation epochs (e.g. a
20-iteration try of the nano demo) keeps the phase's share of the run, as its lr schedule does."""
import os

import pytest
from detectron2.config import LazyConfig

from efl.engine.defaults import build_no_aug_switch
from efl.engine.no_aug_switch import no_aug_start_iter
from efl.engine.yolox_optim import YOLOXCosineParamScheduler

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NANO = os.path.join(REPO, "configs", "demo", "efl_yolox_ip_nano_synthetic.py")


def test_the_configs_own_schedule_switches_after_its_epochs():
    cfg = LazyConfig.load(NANO)  # 12 epochs of 100 iterations, the last 2 without augmentation
    assert build_no_aug_switch(cfg).start_iter == 1000


def test_a_short_max_iter_switches_where_the_lr_schedule_enters_its_constant_tail():
    cfg = LazyConfig.apply_overrides(LazyConfig.load(NANO), ["train.max_iter=20"])
    start = build_no_aug_switch(cfg).start_iter
    assert start == 17  # round(20 x 10 / 12)
    # the same point of the run as the lr schedule's constant last 2 of 12 epochs
    schedule = YOLOXCosineParamScheduler(total_epochs=12, warmup_epochs=1, constant_epochs=2, min_lr_ratio=0.05)
    assert schedule(16 / 20) > schedule(17 / 20) == pytest.approx(0.05)


def test_without_the_schedules_epochs_a_phase_longer_than_the_run_is_an_error():
    with pytest.raises(ValueError, match="do not fit"):
        no_aug_start_iter(max_iter=20, epoch_iters=100, no_aug_epochs=2)
