"""One rule for "distributed": a default process group with more than one process."""
import torch
import torch.distributed as dist

from efl.utils import all_reduce_sum_, is_distributed


def test_no_process_group_is_not_distributed_and_all_reduce_is_the_identity():
    assert not dist.is_initialized()
    tensor = torch.tensor([1.0, 2.0])
    assert all_reduce_sum_(tensor) is tensor
    assert torch.equal(tensor, torch.tensor([1.0, 2.0]))
    assert not is_distributed()


def test_a_one_process_group_is_not_distributed_and_issues_no_collective(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(dist, "all_reduce", lambda *a, **k: calls.append(a))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        assert not is_distributed()
        all_reduce_sum_(torch.ones(3))
        assert calls == []
    finally:
        dist.destroy_process_group()
