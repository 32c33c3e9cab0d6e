# YOLOX-IP optimisation (docs/yolox_training.md): SGD, momentum 0.9, Nesterov, weight decay 5e-4
# on weights and on the classification biases only (not on BatchNorm parameters nor other biases),
# lr = 0.0003125 x images per iteration; quadratic warm-up over 5 epochs from 0, cosine to
# 0.05 x lr at epoch 285, constant for the last 15 epochs (the no-augmentation epochs).
#
# `yolox_schedule` turns epochs into Detectron2 iterations. As in the reference an epoch is the
# dataset's image count |D| (not the repeat-factor-expanded count): ceil(|D| / images per
# iteration) iterations. The schedule is evaluated at iteration / max_iter, so max_iter must be
# total_epochs whole epochs (which yolox_schedule gives).
import torch

from detectron2.config import LazyCall as L
from efl.data import iterations_for_epochs
from efl.engine.yolox_optim import LR_PER_IMAGE, YOLOXCosineParamScheduler, yolox_param_groups

SGD = L(torch.optim.SGD)(
    # params.model is set to the model object by tools/train_net.py before instantiation.
    params=L(yolox_param_groups)(
        weight_decay="${..weight_decay}",
        # the reference's except_keys roi_head.cls_preds.{0,1,2}
        decayed_bias_modules=[r"head\.cls_preds\.\d+"],
    ),
    lr=LR_PER_IMAGE * 128,
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
)

lr_multiplier = L(YOLOXCosineParamScheduler)(
    total_epochs=300, warmup_epochs=5, constant_epochs=15, min_lr_ratio=0.05
)


def yolox_schedule(num_images, *, total_batch_size, epochs=300):
    """(iterations per epoch, max_iter) for ``epochs`` epochs of ``num_images`` images."""
    epoch_iters = iterations_for_epochs(num_images, epochs=1, total_batch_size=total_batch_size)
    return epoch_iters, epochs * epoch_iters
