# Focal-loss baseline of the improved baseline, ResNet-50: the EFL recipe with scale factor 0,
# which makes EFL exactly sigmoid focal loss (gamma 2, alpha 0.25) for every class.
from .efl_improved_baseline_r50_2x_rfs import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/focal_improved_baseline_r50_2x_rfs"
