# LVIS v1 data for YOLOX-IP (docs/yolox_training.md), lvis_v1.py with the YOLOX pipeline:
# - Train: repeat factor sampling as lvis_v1.py (t = 0.001, sqrt, ceil) picks the first mosaic tile;
#   YOLOXTrainMapper draws the other 3 tiles and the MixUp partner uniformly from the dataset, then
#   random affine, MixUp, HSV, flip, longest side 32 x U{15..25} padded to a square at the
#   top-left; BGR 0-255. train.no_aug_epochs switches to mapper.no_aug=True (HSV, flip, size).
#   The mapper loads the dataset list once more (partners), as the sampler does.
# - Test: longest side 640 (ResizeShortestEdge(640, max_size=640)); the model pads to 640 x 640 at
#   the top-left (model.test_pad_to). LVIS AP with 300 detections per image (lvis_v1.py).
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from efl.data.eod_test_mapper import EODTestMapper
from efl.data.yolox_augmentation import YOLOXTrainMapper

from .lvis_v1 import dataloader

# The mapper's defaults are the reference's recipe (640 px, rotation 10 degrees, scale 0.1-2, shear 2,
# MixUp jitter 0.8-1.6, HSV gains 0.015/0.7/0.4, flip 0.5, sizes 32 x U{15..25}); its docstring
# lists every argument for overrides such as dataloader.train.mapper.scale=[0.5,1.5].
dataloader.train.mapper = L(YOLOXTrainMapper)(dataset_dicts="${..dataset}", no_aug=False)
# every training image is a square of 480..800: grouping by aspect ratio is pointless
dataloader.train.aspect_ratio_grouping = False
# the reference: 16 GPUs x 8 images, 8 workers per GPU
dataloader.train.total_batch_size = 128
dataloader.train.num_workers = 8

dataloader.test.mapper = L(EODTestMapper)(
    is_train=False,
    augmentations=[L(T.ResizeShortestEdge)(short_edge_length=640, max_size=640)],
    image_format="BGR",
    # True: the reference's OpenCV reading and keep_ar_resize_max (docs/eod_checkpoints.md)
    opencv_resize=False,
)
