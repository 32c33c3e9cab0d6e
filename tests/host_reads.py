"""A CPU stand-in for CUDA's sync debug mode: count every Python-level way of reading a tensor's
values to the host (``item``, ``tolist``, ``bool``/``float``/``int``, ``numpy``, ``nonzero``,
boolean-mask indexing). Shape and dtype checks read no values and are not counted.

On a GPU each such read stalls the stream until the work queued before it is done."""
import torch

_READERS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "nonzero")


def count_host_reads(monkeypatch):
    """Patch torch so that every host read appends its kind to the returned list."""
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
    original_setitem = torch.Tensor.__setitem__

    def setitem(self, index, value):
        parts = index if isinstance(index, tuple) else (index,)
        if any(torch.is_tensor(p) and p.dtype == torch.bool for p in parts):
            reads.append("boolean mask assignment")  # index_put_ lists the mask's indices first
        return original_setitem(self, index, value)

    monkeypatch.setattr(torch.Tensor, "__setitem__", setitem)
    original_nonzero = torch.nonzero

    def nonzero(*args, **kwargs):
        reads.append("torch.nonzero")
        return original_nonzero(*args, **kwargs)

    monkeypatch.setattr(torch, "nonzero", nonzero)
    return reads
