# Learning-rate schedules in epochs of the repeat-factor-expanded training set, as the reference
# (docs/improved_baseline.md §5): linear warmup over the first epoch from 0.001 x lr, then x0.1 at
# epochs 16 and 22 of 24 (2/3 and 11/12 of training). An epoch is ceil(E / images per iteration)
# iterations, E = sum_i ceil(r_i) images, and n epochs are n times that
# (efl.data.iterations_for_epochs).
#
# LVIS v1 train: E needs the classes of every image, i.e. the annotation file. Without it we use
# the estimate E ~= 125,515 from the per-class image counts (derivation and bounds in
# docs/improved_baseline.md §5): 7,845 iterations per epoch at 16 images, 188,280 for 24 epochs.
# With the annotation file, pass the exact E (efl.data.expanded_epoch_length of the data piece's
# repeat factors) to `rfs_schedule`, or set train.max_iter: the milestones are fractions of
# max_iter, so it is the only number that changes.
from fvcore.common.param_scheduler import MultiStepParamScheduler

from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from efl.data import iterations_for_epochs

LVIS_V1_TRAIN_RFS_EXPANDED_IMAGES = 125515  # estimate, see above


def rfs_schedule(expanded_images, *, epochs=24, decay_epochs=(16, 22), warmup_epochs=1,
                 ims_per_batch=16):
    """(max_iter, lr_multiplier) of an EOD-style step schedule counted in expanded epochs.

    Args:
        expanded_images: E = sum_i ceil(r_i) of the training set.
        epochs: length of training in epochs (24 for "2x").
        decay_epochs: epochs after which the lr is multiplied by 0.1.
        warmup_epochs: length of the linear warmup (from 0.001 x lr).
        ims_per_batch: images per iteration over all processes.
    """
    max_iter = iterations_for_epochs(expanded_images, epochs=epochs, total_batch_size=ims_per_batch)
    multiplier = L(WarmupParamScheduler)(
        scheduler=L(MultiStepParamScheduler)(
            values=[1.0, 0.1, 0.01],
            # in epochs: LRMultiplier evaluates the schedule at iteration / max_iter, and
            # max_iter is a whole number of epochs, so the steps fall on epoch boundaries
            milestones=list(decay_epochs),
            num_updates=epochs,
        ),
        warmup_length=warmup_epochs / epochs,
        warmup_method="linear",
        warmup_factor=0.001,
    )
    return max_iter, multiplier


# 24 epochs ("2x") of LVIS v1 train with RFS at 16 images per iteration.
lvis_v1_rfs_2x_max_iter, lvis_v1_rfs_2x_lr_multiplier = rfs_schedule(LVIS_V1_TRAIN_RFS_EXPANDED_IMAGES)
