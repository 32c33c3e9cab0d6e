# EFL improved baseline, ResNet-101 FPN: the R-50 recipe with a deeper backbone.
# Reference: 29.2 AP / 23.5 APr on LVIS v1 val.
from .efl_improved_baseline_r50_2x_rfs import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.depth = 101
train.init_checkpoint = "pretrained/R-101-torchvision.pkl"
train.output_dir = "./output/efl_improved_baseline_r101_2x_rfs"
