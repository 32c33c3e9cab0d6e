"""Choosing Detectron2's trainer for the device."""
import logging

import torch
from detectron2.engine import AMPTrainer, SimpleTrainer

from ..compat import amp_trainer_requires_cuda

__all__ = ["build_trainer"]


def build_trainer(model, data_loader, optimizer, *, amp_enabled):
    """:class:`AMPTrainer` when ``amp_enabled`` and the model is on CUDA, else :class:`SimpleTrainer`.

    Detectron2's AMPTrainer asserts CUDA in every step, so on CPU AMP is turned off with a
    warning rather than crashing at the first iteration. The EFL/EQFL statistics never see the
    loss scale (the loss computes them analytically in fp32), so both trainers are safe for them.

    Args:
        model: the model, already on its device (and wrapped in DDP if distributed).
        data_loader: an iterable of training batches.
        optimizer: the optimizer (with gradient clipping already added if wanted).
        amp_enabled: ``train.amp.enabled`` of the config.
    """
    on_cuda = next(model.parameters()).is_cuda
    use_amp = amp_enabled and (on_cuda or not amp_trainer_requires_cuda())
    if amp_enabled and not use_amp:
        logging.getLogger(__name__).warning("train.amp.enabled is set but the model is on CPU: "
                                            "training in fp32 with SimpleTrainer")
    if use_amp:
        return AMPTrainer(model, data_loader, optimizer)
    return SimpleTrainer(model, data_loader, optimizer)
