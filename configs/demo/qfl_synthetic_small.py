# The QFL baseline of eqfl_synthetic_small.py: scale_factor 0 (γ_j = 2, w_j = 1 for every class).
from .eqfl_synthetic_small import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/demo/qfl"
