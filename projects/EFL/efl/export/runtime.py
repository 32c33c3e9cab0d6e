"""Run an exported detector (TorchScript or ONNX Runtime) on pictures as the PyTorch model does."""
import json
import os
import warnings
from typing import Tuple

import numpy as np
import torch

from .exporters import METADATA_KEY

__all__ = ["ExportedDetector"]


class ExportedDetector:
    """
    An exported graph (``.ts``: TorchScript, ``.onnx``: ONNX Runtime on the CPU) with its metadata:

        detector = ExportedDetector("export/model.onnx")
        boxes, scores, classes = detector(image)   # (3, H, W) float32, resized like the config's test loader

    Returns NumPy arrays: boxes XYXY in the input's pixels, scores descending, class indices.
    ``scale_to(boxes, input_size, original_size)`` maps the boxes to the original picture.
    """

    def __init__(self, path: str, num_threads: int = 0):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"exported model {path} does not exist")
        self.path = path
        if path.endswith(".onnx"):
            import onnxruntime as ort

            options = ort.SessionOptions()
            if num_threads:
                options.intra_op_num_threads = num_threads
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            self.metadata = json.loads(self._session.get_modelmeta().custom_metadata_map[METADATA_KEY])
            self.format = "onnx"
        elif path.endswith((".ts", ".pt")):
            extra = {METADATA_KEY: ""}
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* deprecated")
                self._module = torch.jit.load(path, map_location="cpu", _extra_files=extra)
            self.metadata = json.loads(extra[METADATA_KEY])
            self.format = "torchscript"
        else:
            raise ValueError(f"exported model {path}: expected a .onnx or .ts file")

    def __call__(self, image) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"expected an image of shape (3, H, W), got {image.shape}")
        max_size = self.metadata.get("max_input_size")
        if max_size and (image.shape[1] > max_size[0] or image.shape[2] > max_size[1]):
            # YOLOX-IP's graph pads to this canvas; a larger input would be cropped, not padded
            raise ValueError(f"{self.path} takes images up to {max_size[0]} x {max_size[1]}, "
                             f"got {image.shape[1]} x {image.shape[2]}: resize like the config's test loader")
        image = np.ascontiguousarray(image, dtype=np.float32)
        if self.format == "onnx":
            boxes, scores, classes = self._session.run(None, {"image": image})
            return boxes, scores, classes
        with torch.no_grad():
            boxes, scores, classes = self._module(torch.from_numpy(image))
        return boxes.numpy(), scores.numpy(), classes.numpy()

    @staticmethod
    def scale_to(boxes: np.ndarray, input_size: Tuple[int, int], original_size: Tuple[int, int]) -> np.ndarray:
        """Boxes in the input's pixels -> boxes in the original picture's (as Detectron2's
        ``detector_postprocess`` with the original height and width)."""
        (in_h, in_w), (out_h, out_w) = input_size, original_size
        scaled = boxes * np.array([out_w / in_w, out_h / in_h, out_w / in_w, out_h / in_h], dtype=boxes.dtype)
        scaled[:, 0::2] = scaled[:, 0::2].clip(0, out_w)
        scaled[:, 1::2] = scaled[:, 1::2].clip(0, out_h)
        return scaled
