# Focal-loss baseline on Open Images, ResNet-50: the EFL recipe with scale factor 0, which makes
# EFL exactly sigmoid focal loss (gamma 2, alpha 0.25) for every class.
from .efl_oids_r50_2x_random import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/focal_oids_r50_2x_random"
