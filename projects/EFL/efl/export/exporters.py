"""Trace a detector into TorchScript or ONNX (docs/export.md).

Both formats come from one ``torch.jit.trace`` of :class:`DetectionGraph`: Detectron2's
post-processing (anchors, box decoding, clipping, top-k, ``batched_nms``) is written to trace with
the input size as a graph value (``ImageList``, ``DefaultAnchorGenerator``, ``detector_postprocess``
read sizes as 0-dim tensors while tracing), so one graph serves every image size. Scripting is not
an option: the detector's parts are configured Python objects that TorchScript cannot compile.
"""
import json
import warnings
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .wrapper import DetectionGraph

__all__ = ["export_onnx", "export_torchscript", "trace_input_size", "METADATA_KEY"]

# where the exported file keeps its metadata (input format, largest input size, classes):
# a TorchScript extra file, an ONNX metadata_props entry
METADATA_KEY = "efl_export.json"
ONNX_OPSET = 17


def trace_input_size(cfg, model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the image the trace runs on: the largest the config's test resize gives a
    4:3 landscape picture, e.g. 800 x 1067 for the improved baseline, 480 x 640 for YOLOX-IP.

    YOLOX-IP pads every input to ``test_pad_to``; the padding amount is traced as
    ``test_pad_to - size``, which holds for any input no larger than ``test_pad_to``, so the
    trace must run on such an input (it does: the test resize keeps the longest side to it)."""
    short, long_max = None, None
    for aug in cfg.dataloader.test.mapper.augmentations:
        if "short_edge_length" in aug:
            lengths = aug.short_edge_length
            short = max(lengths) if isinstance(lengths, (list, tuple)) else lengths
            long_max = aug.get("max_size", None)
    if short is None:
        raise ValueError("the config's test mapper has no ResizeShortestEdge: pass the trace size explicitly")
    height, width = short, int(round(short * 4 / 3))
    if long_max is not None and width > long_max:
        height, width = int(round(long_max * 3 / 4)), long_max
    return height, width


def _traced(model: nn.Module, input_size: Tuple[int, int]):
    rules = getattr(model, "eod_rules", None)
    if rules is not None and rules.any:
        # the reference's rules take k of each level's top-k from len(boxes), a Python int the
        # trace would freeze at the traced picture's count
        raise ValueError("a model with eod_inference set does not export: export it with model.eod_inference=None "
                         "(Detectron2's inference)")
    graph = DetectionGraph(model).eval()  # the ONNX exporter restores the wrapper's mode, and with it the model's
    generator = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device
    sample = (torch.rand((3, *input_size), generator=generator) * 255).to(device)
    return graph, sample


def _metadata(model: nn.Module, input_size: Tuple[int, int], extra: Optional[Dict]) -> str:
    pad_to = getattr(model, "test_pad_to", None)
    info = {
        "input_format": model.input_format,
        "traced_input_size": list(input_size),
        # the graph holds for inputs up to this size (YOLOX-IP's padded canvas), None: any size
        "max_input_size": list(pad_to) if pad_to else None,
        "num_classes": model.num_classes,
        "outputs": ["boxes (R, 4) XYXY input pixels", "scores (R,)", "classes (R,) int64"],
    }
    info.update(extra or {})
    return json.dumps(info)


def _quiet_trace(fn):
    """The tracer warns at every Python-side size or bool it meets; they are expected here (the
    parity tests at several sizes check the graph), so keep the console readable."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.(trace|script|trace_method).* deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        with torch.no_grad():
            return fn()


def export_torchscript(model: nn.Module, path: str, input_size: Tuple[int, int], metadata: Optional[Dict] = None):
    """Trace ``model`` (eval mode) and save the TorchScript module to ``path``; its metadata is
    the extra file ``efl_export.json``."""
    graph, sample = _traced(model, input_size)
    traced = _quiet_trace(lambda: torch.jit.trace(graph, (sample,), check_trace=False))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.save.* deprecated")  # TorchScript still loads
        torch.jit.save(traced, path, _extra_files={METADATA_KEY: _metadata(model, input_size, metadata)})
    return path


def export_onnx(model: nn.Module, path: str, input_size: Tuple[int, int], metadata: Optional[Dict] = None):
    """Export ``model`` (eval mode) to ONNX (opset 17) at ``path`` with dynamic height and width,
    through the TorchScript-based exporter (``dynamo=False``): the dynamo exporter cannot follow
    the data-dependent shapes of top-k, clipping and NMS. The metadata is the model's
    ``efl_export.json`` metadata_props entry."""
    import onnx

    graph, sample = _traced(model, input_size)
    _quiet_trace(lambda: torch.onnx.export(
        graph, (sample,), path, dynamo=False, opset_version=ONNX_OPSET,
        input_names=["image"], output_names=["boxes", "scores", "classes"],
        dynamic_axes={"image": {1: "height", 2: "width"}, "boxes": {0: "detections"},
                      "scores": {0: "detections"}, "classes": {0: "detections"}},
    ))
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, _metadata(model, input_size, metadata)
    onnx.save(proto, path)
    return path
