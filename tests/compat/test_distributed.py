"""efl.compat.distributed: what the CPU/gloo launcher needs from detectron2 0.6, in a real
one-process gloo group."""
import importlib
import inspect
import socket

import pytest
import torch
import torch.distributed as dist
from torch import nn

from detectron2.engine import create_ddp_model as d2_create_ddp_model
from detectron2.utils import comm
from efl.compat import create_ddp_model, create_local_process_group, find_free_port

# the module: detectron2.engine's `launch` attribute is the function of the same name
d2_launch = importlib.import_module("detectron2.engine.launch")


@pytest.fixture
def gloo_group():
    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{find_free_port()}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()
        comm._LOCAL_PROCESS_GROUP = None


def test_find_free_port_returns_a_port_that_can_be_bound():
    port = find_free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_detectron2_launch_is_still_cuda_and_nccl_only_and_keeps_its_helpers_private():
    # Why efl.engine.launch has its own CPU worker and needs these helpers at all.
    worker = inspect.getsource(d2_launch._distributed_worker)
    assert 'backend="NCCL"' in worker and "torch.cuda.is_available()" in worker, \
        "detectron2's launcher supports CPU now: use it and drop the CPU worker"
    assert not hasattr(comm, "create_local_process_group"), \
        "detectron2 has create_local_process_group: drop the fallback in efl.compat.distributed"
    assert hasattr(d2_launch, "_find_free_port") and not hasattr(d2_launch, "find_free_port")


def test_local_process_group_is_the_one_detectron2_comm_reads(gloo_group):
    with pytest.raises(AssertionError, match="Local process group is not created"):
        comm.get_local_rank()
    group = create_local_process_group(1, 0)
    assert comm._LOCAL_PROCESS_GROUP is group
    assert comm.get_local_rank() == 0 and comm.get_local_size() == 1
    with pytest.raises(RuntimeError, match="already exists"):
        create_local_process_group(1, 0)


def test_ddp_wraps_a_cpu_model_where_detectron2s_create_ddp_model_fails(gloo_group, monkeypatch):
    create_local_process_group(1, 0)
    # One real process, but a world size above 1 so that both functions do wrap.
    monkeypatch.setattr(comm, "get_world_size", lambda: 2)
    with pytest.raises(ValueError, match="device_ids"):
        d2_create_ddp_model(nn.Linear(3, 2))  # device_ids=[0] for a CPU module
    model = create_ddp_model(nn.Linear(3, 2), broadcast_buffers=False)
    assert isinstance(model, nn.parallel.DistributedDataParallel) and model.device_ids is None
    model(torch.ones(4, 3)).sum().backward()
    assert model.module.weight.grad is not None
    with pytest.raises(ValueError, match="fp16_compression needs a CUDA model"):
        create_ddp_model(nn.Linear(3, 2), fp16_compression=True)


def test_single_process_models_are_returned_unwrapped():
    model = nn.Linear(2, 2)
    assert create_ddp_model(model) is model
