# EFL improved baseline, ResNet-50 FPN, 24 epochs of LVIS v1 train with repeat factor sampling,
# 16 images per iteration (docs/improved_baseline.md). Reference: 27.5 AP / 20.2 APr on LVIS v1 val.
#   tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --num-gpus 8
# With 8 GPUs, 2 images per GPU; for another total batch B set dataloader.train.total_batch_size=B,
# optimizer.lr=0.00125*B and scale train.max_iter by 16/B (see common/optim.py, schedules.py).
# The loss (EFL: gamma_b 2, s 8, alpha 0.25) is set in the model piece, the evaluator (LVIS AP,
# 300 detections per image) in the data piece, gradient clipping in common/train.py.
from detectron2.config import LazyCall as L

from efl.data import iterations_for_epochs
from efl.modeling import FrozenStatisticsBN

from .common.data.lvis_v1 import dataloader
from .common.models.improved_retinanet import model
from .common.optim import SGD as optimizer
from .common.schedules import (
    LVIS_V1_TRAIN_RFS_EXPANDED_IMAGES,
    lvis_v1_rfs_2x_lr_multiplier as lr_multiplier,
    lvis_v1_rfs_2x_max_iter,
)
from .common.train import train

dataloader.train.total_batch_size = 16
# The reference's ATSS centre rule for its "+1" boxes: an anchor centre more than 0.51 px inside
# the ground truth (docs/improved_baseline.md §2; YOLOX-IP keeps 0.01)
model.anchor_labeler.center_margin = 0.51
# The reference's trainable parameters: the frozen BN of res3-res5 keeps its statistics fixed but
# trains its affine weight and bias (84 tensors in R50), and the head's tower convs have no bias
model.backbone.bottom_up.stages.norm = L(FrozenStatisticsBN)()
model.head.tower_conv_bias = False

train.max_iter = lvis_v1_rfs_2x_max_iter
# torchvision ImageNet weights converted with detectron2's tools/convert-torchvision-to-d2.py
train.init_checkpoint = "pretrained/R-50-torchvision.pkl"
train.output_dir = "./output/efl_improved_baseline_r50_2x_rfs"
# once per epoch
train.checkpointer.period = iterations_for_epochs(
    LVIS_V1_TRAIN_RFS_EXPANDED_IMAGES, epochs=1, total_batch_size=dataloader.train.total_batch_size
)
train.eval_period = 0  # evaluate once, at the end (EOD's test_freq 24)
