"""Host syncs on CUDA, counted with ``torch.cuda.set_sync_debug_mode("warn")``: each synchronizing
CUDA call (a device-to-host read, a blocking host-to-device copy) warns from the Python line that
made it. The loss makes exactly one per call (its one host read, EqualizedLossBase); a training step
of each detector family makes that one inside the loss, and the detector's own are listed (written
to $EFL_GPU_CHECK_DIR/host_syncs.json for tools/gpu_check.py's report).

On the CPU, the same rule has a stand-in: the loss builds no tensor from host data (torch.tensor /
torch.as_tensor), which on a GPU is a blocking host-to-device copy."""
import collections
import contextlib
import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from detectron2.utils.events import EventStorage

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

from .cuda import requires_cuda
from .tiny_detectors import FAMILIES, build_detector, training_batch

LOSS_PACKAGE = str(Path(__import__("efl.losses", fromlist=["_"]).__file__).parent)
C = 7


@contextlib.contextmanager
def counted_syncs():
    """Yields a list that collects ``(file, line)`` of every synchronizing CUDA call inside."""
    sites = []
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield sites
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    sites += [(w.filename, w.lineno) for w in caught if "synchronizing" in str(w.message)]


def loss_inputs(device, seed=0, num_rows=300):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_rows, C, generator=generator).to(device).requires_grad_()
    labels = torch.randint(0, C + 1, (num_rows,), generator=generator).to(device)
    return logits, labels, torch.rand(num_rows, generator=generator).to(device)


def call(loss, logits, labels, scores, normalizer):
    if isinstance(loss, EqualizedQualityFocalLoss):
        return loss(logits, labels, scores, normalizer)
    return loss(logits, labels, normalizer)


NORMALIZERS = [pytest.param(lambda device: 12.0, id="float"),
               pytest.param(lambda device: torch.tensor(12.0, device=device), id="device_tensor")]


@pytest.mark.parametrize("make_normalizer", NORMALIZERS)
@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_the_loss_builds_no_tensor_from_host_data_on_cpu(loss_cls, make_normalizer, monkeypatch):
    built = []
    for name in ("tensor", "as_tensor"):
        original = getattr(torch, name)

        def from_host_data(*args, _original=original, _name=name, **kwargs):
            built.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch, name, from_host_data)
    logits, labels, scores = loss_inputs("cpu")
    normalizer = make_normalizer("cpu")
    built.clear()
    for training in (True, False):
        call(loss_cls(C).train(training), logits, labels, scores, normalizer).backward()
    assert built == []


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("make_normalizer", NORMALIZERS)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("loss_cls", [EqualizedFocalLoss, EqualizedQualityFocalLoss])
def test_the_loss_syncs_once_per_call_and_never_in_backward(loss_cls, training, make_normalizer):
    loss = loss_cls(C).cuda().train(training)
    loss.chunk_entries = 40 * C  # several chunks
    logits, labels, scores = loss_inputs("cuda")
    normalizer = make_normalizer("cuda")
    for _ in range(2):  # the second call uses moved statistics
        with counted_syncs() as forward_syncs:
            value = call(loss, logits, labels, scores, normalizer)
        assert len(forward_syncs) == 1, forward_syncs
        assert forward_syncs[0][0].startswith(LOSS_PACKAGE), forward_syncs
        with counted_syncs() as backward_syncs:
            value.backward()
        assert backward_syncs == []


@requires_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("family", FAMILIES)
def test_a_detector_training_step_syncs_once_inside_the_loss(family, tiny_cfg):
    model = build_detector(family, tiny_cfg, "cuda")
    batch = [dict(d, image=d["image"].cuda()) for d in training_batch(tiny_cfg)]
    with EventStorage():
        sum(model(batch).values()).backward()  # warm-up: lazy initialisations sync once
        model.zero_grad()
        with counted_syncs() as forward_syncs:
            losses = model(batch)
        with counted_syncs() as backward_syncs:
            sum(losses.values()).backward()
    in_loss = [s for s in forward_syncs if s[0].startswith(LOSS_PACKAGE)]
    assert len(in_loss) == 1, in_loss
    record_detector_syncs(family, forward_syncs, backward_syncs)


def record_detector_syncs(family, forward_syncs, backward_syncs):
    """Add this family's sync sites to $EFL_GPU_CHECK_DIR/host_syncs.json, if that is set."""
    out_dir = os.environ.get("EFL_GPU_CHECK_DIR")
    if not out_dir:
        return
    path = Path(out_dir) / "host_syncs.json"
    records = json.loads(path.read_text()) if path.exists() else {}
    sites = collections.Counter(f"{os.path.relpath(f)}:{line}" for f, line in forward_syncs)
    records[family] = {"forward": len(forward_syncs), "backward": len(backward_syncs),
                       "forward_sites": dict(sites.most_common())}
    path.write_text(json.dumps(records, indent=2))
