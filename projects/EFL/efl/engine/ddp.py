"""DistributedDataParallel wrapping that works on CPU as well as on GPUs."""
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

__all__ = ["create_ddp_model"]


def create_ddp_model(model, *, fp16_compression=False, **kwargs):
    """Like :func:`detectron2.engine.create_ddp_model`, but a CPU model gets ``device_ids=None``.

    Detectron2 0.6 always passes ``device_ids=[local_rank]``, which DDP rejects for a module on
    CPU (the gloo path of :func:`efl.engine.launch`).

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
