# LVIS v1 data for the improved-baseline RetinaNet (docs/improved_baseline.md §4, §5), in the style of
# detectron2's model_zoo configs/common/data/coco.py.
# - Datasets `lvis_v1_train_efl` / `lvis_v1_val_efl`: the reference layout under $EFL_LVIS_ROOT
#   (annotations/lvis_v1_{train,val}.json, train2017/, val2017/; see efl/data/lvis.py). For
#   Detectron2's own layout set dataloader.train.dataset.names="lvis_v1_train" (and the test).
# - Train: short side chosen per image from 640..800 (step 32), long side <= 1333, horizontal flip;
#   repeat factor sampling with t = 0.001, sqrt, ceil rounding like the reference (set
#   rounding="stochastic" for Detectron2's). An epoch of the expanded list is sum_i ceil(r_i)
#   images: efl.data.expanded_epoch_length(repeat_factors).
# - Test: short side 800, long side <= 1333. LVIS AP with at most 300 detections per image, by the
#   project's LVISEvaluator with the hotcoco backend (the official lvis-api's numbers in seconds
#   instead of minutes, tests/evaluation; backend="lvis" selects the official API, ~23 GB on val).
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
from efl.data import repeat_factors_from_category_frequency
from efl.data.eod_test_mapper import EODTestMapper
from efl.evaluation import LVISEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="lvis_v1_train_efl"),
    # The sampler loads the dataset a second time to count classes (as detectron2's ViTDet LVIS
    # configs do); the interpolation keeps both on the same dataset.
    sampler=L(RepeatFactorTrainingSampler)(
        repeat_factors=L(repeat_factors_from_category_frequency)(
            dataset_dicts="${...dataset}", repeat_thresh=0.001, sqrt=True, rounding="ceil"
        )
    ),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(
                short_edge_length=(640, 672, 704, 736, 768, 800),
                sample_style="choice",
                max_size=1333,
            ),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="RGB",
        use_instance_mask=False,
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="lvis_v1_val_efl", filter_empty=False),
    # DatasetMapper; opencv_resize=True reads and resizes as the reference (OpenCV, INTER_LINEAR
    # at the exact scale), for its converted models (docs/eod_checkpoints.md)
    mapper=L(EODTestMapper)(
        is_train=False,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
        ],
        image_format="${...train.mapper.image_format}",
        opencv_resize=False,
    ),
    num_workers=4,
)

dataloader.evaluator = L(LVISEvaluator)(
    dataset_name="${..test.dataset.names}",
    tasks=("bbox",),
    max_dets_per_image=300,
    backend="hotcoco",
)
