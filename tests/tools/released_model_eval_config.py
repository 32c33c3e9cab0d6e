# The released improved-baseline R50 config evaluated on the tiny LVIS-format set that
# tests/engine/tiny_lvis.py writes into $EFL_TEST_TINY_LVIS, at a small test size so that a CPU
# runs the whole R50 in seconds: what a user runs on LVIS after tools/convert_eod_checkpoint.py.
import os

from ...configs.efl_improved_baseline_r50_2x_rfs import (  # noqa: F401
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)
from ..engine.tiny_lvis import CATEGORIES, register_tiny_lvis

register_tiny_lvis("efl_test_tiny", os.environ["EFL_TEST_TINY_LVIS"])

model.num_classes = len(CATEGORIES)
dataloader.test.dataset.names = "efl_test_tiny"
dataloader.test.mapper.augmentations[0].short_edge_length = 128
dataloader.test.num_workers = 0
train.device = "cpu"
train.init_checkpoint = ""
