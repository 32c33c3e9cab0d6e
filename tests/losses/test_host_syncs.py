"""The loss reads values back to the host once per call (on a GPU every read stalls the stream).

A CPU stand-in for CUDA's sync debug mode: every Python-level way of reading a tensor's values
(``item``, ``tolist``, ``bool``/``float``/``int``, ``numpy``, ``nonzero``, boolean-mask indexing) is
counted while the loss runs; shape and dtype checks read no values and are not counted.
"""
import pytest
import torch

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

C = 7
_READERS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "nonzero")


@pytest.fixture
def host_reads(monkeypatch):
    reads = []
    for method in _READERS:
        original = getattr(torch.Tensor, method)

        def reader(self, *args, _original=original, _method=method, **kwargs):
            reads.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, reader)
    original_getitem = torch.Tensor.__getitem__

    def getitem(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        if any(torch.is_tensor(p) and p.dtype == torch.bool for p in parts):
            reads.append("boolean mask")  # its result's size is data-dependent: a host read
        return original_getitem(self, index)

    monkeypatch.setattr(torch.Tensor, "__getitem__", getitem)
    original_nonzero = torch.nonzero

    def nonzero(*args, **kwargs):
        reads.append("torch.nonzero")
        return original_nonzero(*args, **kwargs)

    monkeypatch.setattr(torch, "nonzero", nonzero)
    return reads


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
