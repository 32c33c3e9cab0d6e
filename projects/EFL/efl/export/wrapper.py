"""The module that is traced: one image in, (boxes, scores, classes) out."""
from typing import Tuple

from torch import Tensor, nn

__all__ = ["DetectionGraph"]


class DetectionGraph(nn.Module):
    """
    Wraps a detector in eval mode (``ImprovedRetinaNet``: improved baseline or YOLOX-IP) so that
    its whole test path, preprocessing (normalisation, padding) through the per-level top-k, NMS
    and the per-image cap, becomes one traceable call on a plain tensor:

        image (3, H, W) float32, the model's input format (BGR or RGB, 0-255), already resized
        like the config's test loader
        -> boxes (R, 4) float32 XYXY in the pixels of that image, scores (R,) float32 sorted
           descending, classes (R,) int64 contiguous class indices

    No ``height``/``width`` is passed to the model, so Detectron2's ``detector_postprocess``
    clips to the input's own size; scaling back to the original picture is one multiplication
    (:class:`ExportedDetector` does it).
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        if model.training:
            raise ValueError("DetectionGraph needs the detector in eval mode (call model.eval())")
        self.model = model

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        (output,) = self.model([{"image": image}])
        instances = output["instances"]
        return instances.pred_boxes.tensor, instances.scores, instances.pred_classes
