# The CPU demo of the YOLOX-IP family (docs/yolox_training.md): a nano YOLOX-IP (depth 0.33,
# width 0.125: the S model with a quarter of its channels, 0.57 M parameters) trained from scratch
# with EFL on the synthetic long-tailed set (48 classes, images of at most 160 px), with the
# YOLOX-IP recipe scaled to the small images and the short run:
#   .venv/bin/python tools/train_net.py --config-file configs/demo/efl_yolox_ip_nano_synthetic.py
#   .venv/bin/python tools/demo.py --family yolox        # this and the focal-loss run, one table
# focal_yolox_ip_nano_synthetic.py is the same run with the focal-loss baseline (scale_factor 0).
#
# What is scaled, and why (the LVIS configs are configs/{efl,eqfl}_yolox_ip_*_300e_rfs.py):
# - Mapper: the reference's pipeline at a quarter of its size: mosaic tiles and affine / MixUp
#   output 160 px (640 / 4), longest side 32 x U{4..6} = 128..192 px (480..800 / 4, on the stride
#   32 grid). Test: longest side 160, padded to 160 x 160 at the top-left (640 / 4).
# - Schedule: 8 images per iteration, an epoch is the 800 training images (100 iterations), 12
#   epochs: warm-up 1, cosine to 5 %, constant (and no Mosaic / affine / MixUp) for the last 2.
# - lr 0.02 (8x the reference's 0.0003125 per image): a dozen epochs from scratch need it.
# - Affine scale U(0.5, 1.5) instead of U(0.1, 2): YOLOX's own recipe for its small models
#   (yolox_tiny / yolox_nano exps); at 160 px the reference's 0.1 leaves objects of a few pixels.
# - Kept as the reference: the classification prior 0.001 and EFL's gamma_b 2, s 4, alpha 0.25.
# - The classification biases' weight decay keeps the LVIS recipe's integral lambda_bias x T
#   (5e-4 x 234,900 iterations = 117; docs/method.md §8): 0.098 over the 1,200 iterations, the
#   one quantity that sets EFL's gradient ratio. Weights keep 5e-4.
# - EMA decay 0.99, tau 100: the reference's 0.9998 averages over ~5000 iterations, more than the
#   whole run; 0.99 averages over the last epoch.
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper
from efl.data.repeat_factor import LVIS_V1_TRAIN_IMAGES as _LVIS_V1_TRAIN_IMAGES
from efl.data.yolox_augmentation import YOLOXTrainMapper
from efl.data.synthetic import PRESETS as _PRESETS  # "_": not a config key

from ..common.data.synthetic_lt import dataloader
from ..common.models.yolox_ip import model
from ..common.train import train
from ..common.yolox_optim import SGD as optimizer
from ..common.yolox_optim import lr_multiplier, yolox_schedule

model.num_classes = 48
model.backbone.bottom_up.depth = 0.33
model.backbone.bottom_up.width = 0.125
model.test_pad_to = (160, 160)

# the mapper's defaults (the reference's recipe) except the size, the size range and the scale
dataloader.train.mapper = L(YOLOXTrainMapper)(
    dataset_dicts="${..dataset}",
    no_aug=False,
    input_size=160,
    scale=(0.5, 1.5),
    random_size=(4, 6),
    size_step=32,  # the stride grid of the sizes, as the default
)
dataloader.train.aspect_ratio_grouping = False  # every training image is a square
dataloader.train.total_batch_size = 8
dataloader.test.mapper = L(DatasetMapper)(
    is_train=False,
    augmentations=[L(T.ResizeShortestEdge)(short_edge_length=160, max_size=160)],
    image_format="BGR",
)

optimizer.lr = 0.02
# the LVIS recipe's iterations: 300 epochs of LVIS v1 train at 128 images
_, _lvis_max_iter = yolox_schedule(_LVIS_V1_TRAIN_IMAGES, total_batch_size=128)
optimizer.params.decayed_bias_weight_decay = (
    f"${{efl.matching_weight_decay:{optimizer.weight_decay},{_lvis_max_iter},${{train.max_iter}}}}")
lr_multiplier.total_epochs = 12
lr_multiplier.warmup_epochs = 1
lr_multiplier.constant_epochs = 2
train.epoch_iters, train.max_iter = yolox_schedule(
    _PRESETS["default"].num_train_images, total_batch_size=dataloader.train.total_batch_size,
    epochs=lr_multiplier.total_epochs,
)
train.no_aug_epochs = lr_multiplier.constant_epochs
train.ema = dict(enabled=True, decay=0.99, tau=100.0)
train.clip_grad = dict(enabled=False)  # as the reference's YOLOX-IP
train.init_checkpoint = ""
train.device = "cpu"
train.seed = 0
train.bias_ledger = True  # bias_ledger.json: the terms of docs/method.md §8, per class
train.log_period = 50
train.checkpointer.period = 400
train.eval_period = 0
train.output_dir = "./output/demo_yolox/efl"
