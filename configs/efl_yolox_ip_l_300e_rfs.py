# EFL YOLOX-IP-L: efl_yolox_ip_s_300e_rfs.py with depth 1.0 / width 1.0 (docs/yolox_training.md).
# The reference released no L model; the architecture and recipe are those of S and M.
#   tools/train_net.py --config-file configs/efl_yolox_ip_l_300e_rfs.py --num-gpus 16
from .efl_yolox_ip_s_300e_rfs import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 1.0
model.backbone.bottom_up.width = 1.0
train.output_dir = "./output/efl_yolox_ip_l_300e_rfs"
