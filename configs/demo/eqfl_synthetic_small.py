# The CPU demo detector with EQFL (γ_b 2, s 4 as in the YOLOX-IP recipes; quality target = the IoU
# of the predicted box with its ground truth). qfl_synthetic_small.py is its QFL baseline.
from detectron2.config import LazyCall as L

from efl.losses import EqualizedQualityFocalLoss

from .efl_synthetic_small import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss = L(EqualizedQualityFocalLoss)(num_classes="${..num_classes}", gamma_b=2.0, scale_factor=4.0)
train.output_dir = "./output/demo/eqfl"
