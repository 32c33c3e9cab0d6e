# EFL improved baseline, ResNet-101 FPN, on the Open Images Challenge 2019: the R-50 recipe with a
# deeper backbone. Reference: mAP 52.6 (mAP0-4: 53.4 / 53.8 / 51.4 / 51.8 / 52.3).
from .efl_oids_r50_2x_random import dataloader, lr_multiplier, model, optimizer, train

model.backbone.bottom_up.stages.depth = 101
train.init_checkpoint = "pretrained/R-101-torchvision.pkl"
train.output_dir = "./output/efl_oids_r101_2x_random"
