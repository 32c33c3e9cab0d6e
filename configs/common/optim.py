# SGD as in the EFL improved baseline (docs/improved_baseline.md §5): lr 0.02 for 16 images per iteration,
# momentum 0.9, weight decay 1e-4 on every parameter, norm layers (GN affine) and biases included.
#
# Other batch sizes: EOD sets lr = 0.00125 x (images per iteration), the linear scaling rule
# (Goyal et al., 2017), e.g. 0.01 for 8 images or 0.04 for 32. Keep the schedule in epochs (see
# schedules.py): max_iter scales as 16 / (images per iteration).
import torch

from detectron2.config import LazyCall as L
from detectron2.solver.build import get_default_optimizer_params

SGD = L(torch.optim.SGD)(
    params=L(get_default_optimizer_params)(
        # params.model is set to the model object by tools/train_net.py before instantiation.
        # Detectron2's default is 0 for norm layers; EOD decays them like every other parameter.
        weight_decay_norm="${..weight_decay}",
    ),
    lr=0.02,
    momentum=0.9,
    weight_decay=1e-4,
)
