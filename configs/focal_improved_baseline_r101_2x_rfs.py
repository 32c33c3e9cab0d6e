# Focal-loss baseline of the improved baseline, ResNet-101 (EFL with scale factor 0).
from .efl_improved_baseline_r101_2x_rfs import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/focal_improved_baseline_r101_2x_rfs"
