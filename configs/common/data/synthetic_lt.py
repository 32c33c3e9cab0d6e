# The synthetic long-tailed set (efl.data.synthetic): LVIS v1 in miniature for CPU demos and tests.
# Same pieces as lvis_v1.py at the set's scale:
# - Datasets `synthetic_lt_train` / `synthetic_lt_val` (48 classes: 14 rare, 18 common, 16 frequent;
#   800 / 300 images of at most 160 px), generated on first load into $EFL_DATASETS
#   (default ~/.cache/efl/datasets). `synthetic_lt_tiny_{train,val}` is the 12-class test preset.
# - Train: short side from 128..160, long side <= 224, horizontal flip (every class is
#   flip-invariant); repeat factor sampling, sqrt, ceil rounding. The threshold keeps LVIS's
#   t * N (0.001 x 100,170 images, i.e. classes in fewer than ~100 images are repeated): with
#   t = 0.001 on 800 images no class would be repeated.
# - Test: short side 144, long side <= 192. LVIS AP with at most 300 detections per image.
from omegaconf import OmegaConf

import efl.data  # noqa: F401  (registers the datasets)
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L
from detectron2.data import (
    DatasetMapper,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.evaluation import LVISEvaluator
from efl.data import lvis_equivalent_threshold, repeat_factors_from_category_frequency
from efl.data.synthetic import PRESETS

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="synthetic_lt_train"),
    sampler=L(RepeatFactorTrainingSampler)(
        repeat_factors=L(repeat_factors_from_category_frequency)(
            dataset_dicts="${...dataset}",
            repeat_thresh=lvis_equivalent_threshold(PRESETS["default"].num_train_images),
            sqrt=True,
            rounding="ceil",
        )
    ),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(128, 144, 160),
                sample_style="choice",
                max_size=224,
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="RGB",
        use_instance_mask=False,
    ),
    total_batch_size=8,
    # 2-core machines: decoding 160 px JPEGs in the main process is cheaper than worker processes.
    num_workers=0,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="synthetic_lt_val", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=144, max_size=192),
        ],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=0,
)

dataloader.evaluator = L(LVISEvaluator)(
    dataset_name="${..test.dataset.names}",
    tasks=("bbox",),
    max_dets_per_image=300,
)
