# The synthetic long-tailed set (efl.data.synthetic): LVIS v1 in miniature for CPU demos and tests,
# as lvis_v1.py with the set's names and scale (imported and overridden, as Detectron2's own LVIS
# configs build on its COCO data piece):
# - Datasets `synthetic_lt_train` / `synthetic_lt_val` (48 classes: 14 rare, 18 common, 16 frequent;
#   800 / 300 images of at most 160 px), generated on first load into $EFL_DATASETS
#   (default ~/.cache/efl/datasets). `synthetic_lt_tiny_{train,val}` is the 12-class test preset.
# - Train: short side from 128..160, long side <= 224, horizontal flip (every class is
#   flip-invariant); repeat factor sampling as lvis_v1.py. The threshold keeps LVIS's t * N
#   (0.001 x 100,170 images, i.e. classes in fewer than ~100 images are repeated): with
#   t = 0.001 on 800 images no class would be repeated.
# - Test: short side 144, long side <= 192. Evaluator as lvis_v1.py.
from efl.data import lvis_equivalent_threshold
from efl.data.synthetic import PRESETS as _PRESETS  # "_": not a config key

from .lvis_v1 import dataloader

dataloader.train.dataset.names = "synthetic_lt_train"
dataloader.train.sampler.repeat_factors.repeat_thresh = lvis_equivalent_threshold(
    _PRESETS["default"].num_train_images
)
dataloader.train.mapper.augmentations[0].short_edge_length = (128, 144, 160)
dataloader.train.mapper.augmentations[0].max_size = 224
dataloader.train.total_batch_size = 8
# 2-core machines: decoding 160 px JPEGs in the main process is cheaper than worker processes.
dataloader.train.num_workers = 0

dataloader.test.dataset.names = "synthetic_lt_val"
dataloader.test.mapper.augmentations[0].short_edge_length = 144
dataloader.test.mapper.augmentations[0].max_size = 192
dataloader.test.num_workers = 0
