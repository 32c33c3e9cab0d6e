# EFL YOLOX-IP-X: efl_yolox_ip_s_300e_rfs.py with depth 1.33 / width 1.25 (docs/yolox_training.md).
# The reference released no X model; the architecture and recipe are those of S and M.
#   tools/train_net.py --config-file configs/efl_yolox_ip_x_300e_rfs.py --num-gpus 16
from .efl_yolox_ip_s_300e_rfs import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.depth = 1.33
model.backbone.bottom_up.width = 1.25
train.output_dir = "./output/efl_yolox_ip_x_300e_rfs"
