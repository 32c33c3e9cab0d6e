"""The loss reads values back to the host once per call (on a GPU every read stalls the stream),
counted with the CPU stand-in of tests/host_reads.py while the loss runs."""
import pytest
import torch

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss
from tests.host_reads import count_host_reads

C = 7


@pytest.fixture
def host_reads(monkeypatch):
    return count_host_reads(monkeypatch)


def inputs(seed=0, num_rows=200):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_rows, C, generator=generator).requires_grad_()
    labels = torch.randint(0, C + 1, (num_rows,), generator=generator)
    return logits, labels, torch.rand(num_rows, generator=generator)


@pytest.mark.parametrize("normalizer", [12.0, torch.tensor(12.0)], ids=["float", "tensor"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_one_host_read_per_call(loss_cls, training, normalizer, host_reads):
    loss = loss_cls(C).train(training)
    loss.chunk_entries = 40 * C  # several chunks
    logits, labels, scores = inputs()
    args = (scores,) if loss_cls is EqualizedQualityFocalLoss else ()
    for _ in range(2):  # the second call uses moved statistics
        host_reads.clear()
        value = loss(logits, labels, *args, normalizer)
        assert len(host_reads) == 1, host_reads
    host_reads.clear()
    value.backward()
    assert host_reads == []
