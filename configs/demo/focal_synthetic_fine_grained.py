# The focal-loss baseline on the fine-grained synthetic set: efl_synthetic_fine_grained.py with
# scale_factor 0 (γ_j = γ_b = 2 and w_j = 1 for every class: RetinaNet's sigmoid focal loss). The
# loss still accumulates its gradient statistics (<output_dir>/efl_statistics/rank0.pth), which
# tools/ratio_by_frequency.py reads.
from .efl_synthetic_fine_grained import dataloader, lr_multiplier, model, optimizer, train

model.cls_loss.scale_factor = 0.0
train.output_dir = "./output/demo_fine_grained/focal"
