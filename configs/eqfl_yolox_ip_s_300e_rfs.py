# EQFL YOLOX-IP-S: efl_yolox_ip_s_300e_rfs.py with the Equalized Quality Focal Loss (gamma_b 2,
# s 4) in place of EFL (docs/yolox_training.md). Reference: 24.2 AP / 16.3 APr on LVIS v1 val.
#   tools/train_net.py --config-file configs/eqfl_yolox_ip_s_300e_rfs.py --num-gpus 16
from detectron2.config import LazyCall as L
from efl.losses import EqualizedQualityFocalLoss

from .efl_yolox_ip_s_300e_rfs import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss = L(EqualizedQualityFocalLoss)(num_classes="${..num_classes}", gamma_b=2.0, scale_factor=4.0)
train.output_dir = "./output/eqfl_yolox_ip_s_300e_rfs"
