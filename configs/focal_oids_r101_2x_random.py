# Focal-loss baseline on Open Images, ResNet-101: the EFL R-101 recipe with scale factor 0.
from .efl_oids_r101_2x_random import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/focal_oids_r101_2x_random"
