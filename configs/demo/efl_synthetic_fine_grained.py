# The CPU demo (efl_synthetic_small.py: same model, schedule and seed) on the fine-grained preset of
# the synthetic set, `synthetic_fg_{train,val}`: 16 frequent parent classes, each with a rare or
# common "holed" and "stretched" sibling of the same shape, colour and texture (48 classes: 14 rare,
# 18 common, 16 frequent; docs/synthetic_dataset.md). About 2.5 minutes on one idle CPU core.
#   tools/train_net.py --config-file configs/demo/efl_synthetic_fine_grained.py
# focal_synthetic_fine_grained.py is the same run with the focal-loss baseline (scale_factor 0).
from efl.data import lvis_equivalent_threshold
from efl.data.synthetic import PRESETS as _PRESETS  # "_": not a config key

from .efl_synthetic_small import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "synthetic_fg_train"
dataloader.train.sampler.repeat_factors.repeat_thresh = lvis_equivalent_threshold(
    _PRESETS["fine_grained"].num_train_images
)
dataloader.test.dataset.names = "synthetic_fg_val"
model.num_classes = _PRESETS["fine_grained"].num_classes
train.output_dir = "./output/demo_fine_grained/efl"
