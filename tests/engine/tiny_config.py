# A LazyConfig for the engine tests: the project's small improved-baseline RetinaNet with EFL on
# the tiny LVIS-format set that tests/engine/tiny_lvis.py writes into $EFL_TEST_TINY_LVIS.
import os

from omegaconf import OmegaConf

from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import MultiStepParamScheduler

from efl.evaluation import LVISEvaluator

from ...configs.common.models.improved_retinanet_small import model
from ...configs.common.optim import SGD as optimizer
from ...configs.common.train import train
from .tiny_lvis import CATEGORIES, register_tiny_lvis

# Every process that loads this config (mp.spawn children too) registers the set.
register_tiny_lvis("efl_test_tiny", os.environ["EFL_TEST_TINY_LVIS"])

model.num_classes = len(CATEGORIES)
model.head.conv_dims = [32]
model.head.num_groups = 8
model.backbone.out_channels = 32
model.head.input_shape = [ShapeSpec(channels=32)] * 3

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="efl_test_tiny"),
    mapper=L(DatasetMapper)(is_train=True, augmentations=[], image_format="RGB"),
    total_batch_size=2,
    aspect_ratio_grouping=False,
    num_workers=0,
)
dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="efl_test_tiny", filter_empty=False),
    mapper=L(DatasetMapper)(is_train=False, augmentations=[], image_format="RGB"),
    num_workers=0,
)
dataloader.evaluator = L(LVISEvaluator)(dataset_name="${..test.dataset.names}", backend="lvis")

optimizer.lr = 0.01
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(MultiStepParamScheduler)(values=[1.0, 0.5], milestones=[2], num_updates=3),
    warmup_length=0.1,
    warmup_factor=0.1,
)

train.device = "cpu"
train.max_iter = 12
train.log_period = 1
train.checkpointer = dict(period=4, max_to_keep=100)
train.seed = 0
