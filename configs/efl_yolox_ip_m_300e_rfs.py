# EFL YOLOX-IP-M: efl_yolox_ip_s_300e_rfs.py with depth 0.67 / width 0.75 (docs/yolox_training.md).
# Reference: 30.0 AP / 23.8 APr on LVIS v1 val.
#   tools/train_net.py --config-file configs/efl_yolox_ip_m_300e_rfs.py --num-gpus 16
from .efl_yolox_ip_s_300e_rfs import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 0.67
model.backbone.bottom_up.width = 0.75
train.output_dir = "./output/efl_yolox_ip_m_300e_rfs"
