"""The test mapper of the LVIS configs: Detectron2's ``DatasetMapper``, or, with
``opencv_resize=True``, the reference's (EOD) test-time reading and resizing, so that a converted
released model sees the reference's pixels (docs/eod_checkpoints.md, "Reference inference")."""
import copy
from typing import Tuple

import cv2
import numpy as np
import torch

import detectron2.data.transforms as T
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils

__all__ = ["EODTestMapper", "eod_resize_scale"]


def eod_resize_scale(height: int, width: int, short_edge: int, max_size: int) -> float:
    """The reference's ``keep_ar_resize`` scale: min(short_edge / short side, max_size / long
    side). With short_edge = max_size it is YOLOX-IP's ``keep_ar_resize_max``: longest side to
    max_size."""
    return min(short_edge / min(height, width), max_size / max(height, width))


class EODTestMapper(DatasetMapper):
    """``DatasetMapper`` for inference; with ``opencv_resize`` it reads the picture with OpenCV
    and resizes it with ``cv2.resize(fx=s, fy=s, interpolation=cv2.INTER_LINEAR)`` at the
    reference's scale s (``eod_resize_scale`` of the ``ResizeShortestEdge`` augmentation's own
    sizes), as the reference's ``fs_opencv`` reader and ``keep_ar_resize`` do. Detectron2 reads
    with PIL and resizes with PIL to rounded sizes: a fifth to a third of the pixels differ.
    (YOLOX-IP's padding to the 640 x 640 canvas is the model's ``test_pad_to``.)"""

    def __init__(self, *args, opencv_resize: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.opencv_resize = opencv_resize
        if not opencv_resize:
            return
        if self.is_train:
            raise ValueError("opencv_resize is the reference's test-time resize: is_train=False")
        resizes = self.augmentations.augs
        if len(resizes) != 1 or not isinstance(resizes[0], T.ResizeShortestEdge):
            raise ValueError("opencv_resize=True replaces a single ResizeShortestEdge augmentation; "
                             f"got {resizes}")
        lengths = tuple(resizes[0].short_edge_length)
        if len(set(lengths)) != 1:  # an int becomes (n, n)
            raise ValueError(f"opencv_resize=True needs one test size, got {lengths}")
        self.short_edge, self.max_size = lengths[0], resizes[0].max_size
        if self.image_format not in ("RGB", "BGR"):
            raise ValueError(f"opencv_resize=True reads RGB or BGR, not {self.image_format!r}")

    def read(self, file_name: str) -> np.ndarray:
        """The picture as the reference reads it (OpenCV), (h, w, 3) uint8 in ``image_format``."""
        image = cv2.imread(file_name, cv2.IMREAD_COLOR)  # BGR, EXIF orientation applied
        if image is None:
            raise FileNotFoundError(f"OpenCV cannot read the image {file_name}")
        if self.image_format == "RGB":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return image

    def read_resized(self, file_name: str) -> Tuple[np.ndarray, Tuple[int, int]]:
        """The picture at the reference's test scale (H', W', 3) and its original (h, w)."""
        image = self.read(file_name)
        return self.resize(image), image.shape[:2]

    def resize(self, image: np.ndarray) -> np.ndarray:
        """An (H, W, 3) uint8 picture (e.g. a video frame) at the reference's test scale."""
        height, width = image.shape[:2]
        scale = eod_resize_scale(height, width, self.short_edge, self.max_size)
        return cv2.resize(image, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)

    def __call__(self, dataset_dict):
        if not self.opencv_resize:
            return super().__call__(dataset_dict)
        dataset_dict = copy.deepcopy(dataset_dict)
        resized, (height, width) = self.read_resized(dataset_dict["file_name"])
        # the picture's size against the dataset's, with Detectron2's error naming the file
        utils.check_image_size(dataset_dict, np.empty((height, width, 0), dtype=np.uint8))
        dataset_dict.setdefault("height", height)
        dataset_dict.setdefault("width", width)
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        dataset_dict.pop("annotations", None)
        dataset_dict.pop("sem_seg_file_name", None)
        return dataset_dict
