"""put_scalar_deferred: a training step's tensor reaches Detectron2's EventStorage at the next
call, under that call's iteration, without a host read of a device tensor in between."""
import pytest
import torch

from detectron2.utils.events import EventStorage
from efl.utils.deferred_scalars import put_scalar_deferred


def test_each_value_is_put_at_the_next_call_and_each_storage_keeps_its_own():
    with EventStorage() as storage:
        put_scalar_deferred("x", torch.tensor(1.5))
        assert "x" not in storage.histories()
        storage.step()
        put_scalar_deferred("x", torch.tensor(2.5))
        assert storage.history("x").values() == [(1.5, 1)]
        with EventStorage(start_iter=7) as other:
            put_scalar_deferred("x", torch.tensor(9.0))
            put_scalar_deferred("x", torch.tensor(10.0))
            assert other.history("x").values() == [(9.0, 7)]
        storage.step()
        put_scalar_deferred("x", torch.tensor(3.5))
        assert storage.history("x").values() == [(1.5, 1), (2.5, 2)]


def test_the_value_is_a_copy_taken_at_the_call():
    value = torch.tensor(4.0)
    with EventStorage() as storage:
        put_scalar_deferred("x", value)
        value += 1  # e.g. a buffer reused by the next step
        put_scalar_deferred("x", value)
        assert storage.history("x").values() == [(4.0, 0)]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the host read is a stream sync")
def test_no_stream_sync_on_cuda():
    with EventStorage() as storage:
        torch.cuda.set_sync_debug_mode("error")
        try:
            put_scalar_deferred("x", torch.tensor(1.5, device="cuda"))
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        put_scalar_deferred("x", torch.tensor(2.5, device="cuda"))
        assert storage.history("x").values() == [(1.5, 0)]
