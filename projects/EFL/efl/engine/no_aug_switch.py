"""Switching the YOLOX-IP training loader to the no-augmentation mapper for the last epochs
(docs/yolox_training.md).

The reference rebuilds its loader with HSV, flip and random size only (no Mosaic, affine or
MixUp) from iteration ``epoch_iters * (300 - 15)`` on. Here `NoAugmentationSwitch` gives the
trainer a new loader at that iteration; a run resumed past it starts with the new loader.
"""
import logging

from detectron2.engine import HookBase

__all__ = ["NoAugmentationSwitch", "no_aug_start_iter"]

logger = logging.getLogger(__name__)


def no_aug_start_iter(*, max_iter, epoch_iters, no_aug_epochs, total_epochs=None):
    """The first iteration of the no-augmentation phase: the last ``no_aug_epochs`` epochs.

    ``total_epochs`` (the learning-rate schedule's, which follows ``max_iter`` as a fraction of
    training): when ``max_iter`` is not ``total_epochs`` epochs of ``epoch_iters`` (e.g. a short
    ``train.max_iter=20`` run), the phase keeps its share of training, as the schedule does.
    """
    if total_epochs and int(max_iter) != int(total_epochs) * int(epoch_iters):
        start = round(int(max_iter) * (1 - no_aug_epochs / total_epochs))
        logger.warning(f"train.max_iter {max_iter} is not the schedule's {total_epochs} epochs of "
                       f"{epoch_iters} iterations: the last {no_aug_epochs} of {total_epochs} epochs "
                       f"(no augmentation) start at iteration {start}, the learning-rate schedule's "
                       "share of the run")
        return start
    start = int(max_iter) - int(no_aug_epochs) * int(epoch_iters)
    if start < 0:
        raise ValueError(f"{no_aug_epochs} no-aug epochs of {epoch_iters} iterations do not fit in "
                         f"max_iter {max_iter}")
    return start


class NoAugmentationSwitch(HookBase):
    """From iteration ``start_iter`` on, the trainer reads batches from ``build_loader()``."""

    def __init__(self, *, start_iter, build_loader):
        """
        Args:
            start_iter: the first iteration that trains on the new loader's batches.
            build_loader: builds the new training loader (called once, at the switch).
        """
        self.start_iter = int(start_iter)
        self.build_loader = build_loader
        self.switched = False

    def before_train(self):
        # trainer.iter is the start iteration here: a resumed run past the switch starts switched
        self._maybe_switch()

    def before_step(self):
        self._maybe_switch()

    def _maybe_switch(self):
        if self.switched or self.trainer.iter < self.start_iter:
            return
        logger.info(f"Iteration {self.trainer.iter}: switching the training loader to the "
                    "no-augmentation mapper")
        loader = self.build_loader()
        trainer = self.trainer
        # Detectron2 0.6's SimpleTrainer (and AMPTrainer) reads `_data_loader_iter`, an iterator
        # it creates in its constructor; later versions create it lazily from
        # `_data_loader_iter_obj` behind a property of that name.
        if isinstance(getattr(type(trainer), "_data_loader_iter", None), property):
            trainer._data_loader_iter_obj = None
        else:
            # dropping the old iterator shuts its worker processes down
            trainer._data_loader_iter = iter(loader)
        trainer.data_loader = loader
        self.switched = True
