"""Process groups and DDP for the CPU/gloo launcher (``efl.engine.launch``).

For detectron2 0.6, whose ``launch`` asserts CUDA and hard-codes NCCL and keeps the two helpers
it would need on CPU private (``engine.launch._find_free_port``, the assignment of
``utils.comm._LOCAL_PROCESS_GROUP`` inside its worker), and whose ``create_ddp_model`` passes
``device_ids=[local_rank]`` even for a CPU model, which DistributedDataParallel rejects.
"""
import socket

import torch.distributed as dist
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

__all__ = ["create_ddp_model", "create_local_process_group", "find_free_port"]


def find_free_port():
    """A TCP port on this machine that was free a moment ago (detectron2 0.6's
    ``_find_free_port``, whose name is private)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))  # port 0: the OS picks a free one
        return sock.getsockname()[1]


def create_local_process_group(num_workers_per_machine, machine_rank):
    """Create the per-machine process groups and make this machine's the one that
    ``detectron2.utils.comm.get_local_rank()`` / ``get_local_size()`` read, as detectron2's own
    launcher does. Every process must call it (``dist.new_group`` is collective).

    Args:
        num_workers_per_machine: processes on each machine.
        machine_rank: this machine's index.
    """
    if hasattr(comm, "create_local_process_group"):  # detectron2 > 0.6 has it as a function
        return comm.create_local_process_group(num_workers_per_machine)
    # detectron2 0.6: the group is a module attribute set by its launcher's worker.
    if comm._LOCAL_PROCESS_GROUP is not None:
        raise RuntimeError("detectron2's local process group already exists in this process")
    for i in range(dist.get_world_size() // num_workers_per_machine):
        ranks_on_i = list(range(i * num_workers_per_machine, (i + 1) * num_workers_per_machine))
        group = dist.new_group(ranks_on_i)
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    return comm._LOCAL_PROCESS_GROUP


def create_ddp_model(model, *, fp16_compression=False, **kwargs):
    """Like :func:`detectron2.engine.create_ddp_model`, but a CPU model gets ``device_ids=None``.

    Args:
        model: the module to wrap; returned unchanged with a single process.
        fp16_compression: compress gradients to fp16 in the all-reduce (GPU only).
        kwargs: other arguments of :class:`torch.nn.parallel.DistributedDataParallel`.
    """
    if comm.get_world_size() == 1:
        return model
    on_cuda = next(model.parameters()).is_cuda
    if "device_ids" not in kwargs:
        kwargs["device_ids"] = [comm.get_local_rank()] if on_cuda else None
    ddp = DistributedDataParallel(model, **kwargs)
    if fp16_compression:
        if not on_cuda:
            raise ValueError("fp16_compression needs a CUDA model (NCCL); set train.ddp.fp16_compression=False")
        from torch.distributed.algorithms.ddp_comm_hooks import default as comm_hooks

        ddp.register_comm_hook(state=None, hook=comm_hooks.fp16_compress_hook)
    return ddp
