"""The project's one rule for "is this run distributed?" and its one all-reduce.

A run is distributed when a default process group exists and holds more than one process. With one
process (or none) a collective would only cost time, so the helpers below issue none; every place
that sums over processes (the loss statistics, the detector's normaliser) goes through them, so
they all agree on when that happens.
"""
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["is_distributed", "all_reduce_sum_", "unwrap_model"]


def is_distributed():
    """True when a default process group with more than one process exists."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum_(tensor):
    """Sum ``tensor`` over the processes of the default group, in place; a no-op (and no
    collective) when :func:`is_distributed` is False. Returns ``tensor``."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def unwrap_model(model):
    """The module a DistributedDataParallel wrapper holds (``model`` itself when not wrapped): its
    parameter and buffer names are the checkpoint's, without the wrapper's ``module.`` prefix."""
    return model.module if isinstance(model, DistributedDataParallel) else model
