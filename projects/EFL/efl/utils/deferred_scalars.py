"""Training-step scalars logged to Detectron2's EventStorage without a host read in the step."""
import weakref

import torch

from detectron2.utils.events import get_event_storage

__all__ = ["put_scalar_deferred"]

# storage -> [(name, host copy, event recorded after the copy or None)], not put yet
_PENDING = weakref.WeakKeyDictionary()


def put_scalar_deferred(name, value):
    """
    Log the 0-dim tensor ``value`` as the scalar ``name`` of the current EventStorage, one
    iteration late, without reading it back now.

    ``EventStorage.put_scalar`` takes a Python number: on a GPU, converting in the middle of the
    forward pass waits for all the work queued before it. Here the value is copied to pinned host
    memory asynchronously, and a later call (the next iteration's) puts every copy that has
    arrived, reading host memory only. The logs smooth scalars over 20 iterations, so one
    iteration of delay does not show; the last iteration's value is not logged.
    """
    storage = get_event_storage()
    waiting = []
    for entry in _PENDING.get(storage, []):
        pending_name, host, copied = entry
        if copied is None or copied.query():
            storage.put_scalar(pending_name, host.item())  # host memory: no device read
        else:
            waiting.append(entry)
    value = value.detach()
    if value.is_cuda:
        host = torch.empty(value.shape, dtype=value.dtype, pin_memory=True)
        host.copy_(value, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
    else:
        host, copied = value.clone(), None
    waiting.append((name, host, copied))
    _PENDING[storage] = waiting
