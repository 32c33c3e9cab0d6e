"""One model state in every process before each evaluation and each checkpoint (docs/train_net.md,
"Several processes").

DDP keeps the parameters identical across processes (same start, all-reduced gradients), but with
``broadcast_buffers=False`` (the reference's choice, ``train.ddp``) every process keeps its own
BatchNorm running statistics: each saw only its own images. Each process then evaluated its shard
of the test set with its own statistics while only rank 0's were saved, so the reported AP was
not the AP of the saved weights. Before an evaluation or a checkpoint this module

1. averages the BatchNorm running statistics of the model and of the EMA over processes (what the
   reference does before evaluating: the average has seen every process's images), then
2. broadcasts rank 0's buffers and EMA, so that every process holds exactly the bytes rank 0
   saves (an all-reduce need not give every process the same bits, e.g. with 3 processes).

The EFL statistics buffers are identical by construction (all-reduced every iteration); the
broadcast leaves them as they are.
"""
import torch
import torch.distributed as dist
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..utils.distributed import unwrap_model
from .ema import average_bn_statistics

__all__ = ["BufferSyncHook", "synchronize_buffers"]


@torch.no_grad()
def synchronize_buffers(model, ema=None):
    """Average the BatchNorm statistics of ``model`` (and of ``ema``, a ``ModelEMA``) over
    processes, then give every process rank 0's buffers and EMA. No-op in one process.
    Every process must call it (collectives)."""
    if comm.get_world_size() == 1:
        return
    average_bn_statistics(model)
    tensors = list(unwrap_model(model).buffers())
    if ema is not None:
        ema.average_bn_statistics()
        # every process agrees on ema.valid: the EMA updates after every step in every process
        if ema.valid:
            tensors += [ema.shadow[name] for name in ema.names]
    for tensor in tensors:
        dist.broadcast(tensor, src=0)


class BufferSyncHook(HookBase):
    """Calls :func:`synchronize_buffers` after each step that a checkpoint or an evaluation follows:
    every ``period`` of ``periods`` (the checkpointer's and the evaluation's) and the last step.

    Register it in every process, after the EMA hook and before the checkpointer and the
    evaluation hooks, so that both see the synchronized state.
    """

    def __init__(self, model, *, ema=None, periods=()):
        """
        Args:
            model: the trained model (a DDP wrapper is looked through).
            ema: the run's ``ModelEMA``, or None.
            periods: the periods (in iterations) of the checkpointer and of the evaluation; 0 or
                None for a hook that only acts at the end.
        """
        self.model = model
        self.ema = ema
        self.periods = [int(p) for p in periods if p]

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter >= self.trainer.max_iter or any(next_iter % p == 0 for p in self.periods):
            synchronize_buffers(self.model, self.ema)
