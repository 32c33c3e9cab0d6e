# The focal-loss baseline of the YOLOX-IP CPU demo: efl_yolox_ip_nano_synthetic.py with
# scale_factor 0 (γ_j = γ_b = 2 and w_j = 1 for every class: RetinaNet's sigmoid focal loss).
from .efl_yolox_ip_nano_synthetic import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/demo_yolox/focal"
