"""Deployment of both detector families: TorchScript and ONNX graphs that take one image and
return its detections after the model's own post-processing (docs/export.md)."""
from .exporters import export_onnx, export_torchscript, trace_input_size
from .runtime import ExportedDetector
from .wrapper import DetectionGraph

__all__ = ["DetectionGraph", "ExportedDetector", "export_onnx", "export_torchscript", "trace_input_size"]
