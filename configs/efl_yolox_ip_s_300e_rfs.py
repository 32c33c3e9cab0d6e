# EFL YOLOX-IP-S, 300 epochs of LVIS v1 train with repeat factor sampling, 128 images per
# iteration, from scratch (docs/yolox_training.md). Reference: 23.3 AP / 18.1 APr on LVIS v1 val.
#   tools/train_net.py --config-file configs/efl_yolox_ip_s_300e_rfs.py --num-gpus 16
# Another total batch B: dataloader.train.total_batch_size=B optimizer.lr=0.0003125*B
# train.epoch_iters=E train.max_iter=300*E train.checkpointer.period=10*E train.eval_period=50*E
# with E = ceil(100170/B) (e.g. B = 64: lr 0.02, E = 1566). The loss (EFL: gamma_b 2, s 4,
# alpha 0.25) is set in the model piece.
from efl.data.repeat_factor import LVIS_V1_TRAIN_IMAGES
from efl.engine.yolox_optim import LR_PER_IMAGE

from .common.data.lvis_v1_yolox import dataloader
from .common.models.yolox_ip import model
from .common.train import train
from .common.yolox_optim import SGD as optimizer
from .common.yolox_optim import lr_multiplier, yolox_schedule

dataloader.train.total_batch_size = 128
optimizer.lr = LR_PER_IMAGE * dataloader.train.total_batch_size  # 0.04

# An epoch is |D| images, not the RFS-expanded count: 783 iterations, 234,900 in all.
train.epoch_iters, train.max_iter = yolox_schedule(
    LVIS_V1_TRAIN_IMAGES, total_batch_size=dataloader.train.total_batch_size, epochs=300
)
# Mosaic, affine and MixUp off for the last 15 epochs (the lr is constant there).
train.no_aug_epochs = 15
# EMA of all float state, decay 0.9998 (1 - exp(-t / 2000)); evaluation uses it.
train.ema = dict(enabled=True, decay=0.9998, tau=2000.0)
train.clip_grad = dict(enabled=False)  # the reference does not clip YOLOX-IP
train.init_checkpoint = ""  # no pretraining
train.output_dir = "./output/efl_yolox_ip_s_300e_rfs"
train.checkpointer.period = 10 * train.epoch_iters  # the reference's save_freq 10
train.eval_period = 50 * train.epoch_iters  # the reference's test_freq 50, and at the end
