# Open Images Challenge 2019 data (500 classes) for the improved-baseline RetinaNet, as the
# reference's efl_oids_r50_2x_random.yaml (docs/openimages.md):
# - Datasets `oid_challenge_2019_train_efl` / `oid_challenge_2019_val_efl`: the JSON of
#   tools/convert_openimages.py under $EFL_OID_ROOT (see efl/data/openimages/datasets.py). Group-of boxes
#   are ordinary training boxes, as in the reference.
# - Train: plain random sampling (Detectron2's TrainingSampler, no repeat factors), short side 800,
#   long side <= 1333, horizontal flip; images without boxes are dropped.
# - Test: short side 800, long side <= 1333; the official Open Images Challenge metric with
#   EQLv2's frequency groups (mAP, mAP0-mAP4), at most 300 detections per image from the model.
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
from efl.evaluation import OpenImagesEvaluator

dataloader = OmegaConf.create()

dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="oid_challenge_2019_train_efl"),
    mapper=L(DatasetMapper)(
        is_train=True,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
            L(T.RandomFlip)(horizontal=True),
        ],
        image_format="RGB",
        use_instance_mask=False,
    ),
    total_batch_size=16,
    num_workers=4,
)

dataloader.test = L(build_detection_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="oid_challenge_2019_val_efl", filter_empty=False),
    mapper=L(DatasetMapper)(
        is_train=False,
        augmentations=[
            L(T.ResizeShortestEdge)(short_edge_length=800, max_size=1333),
        ],
        image_format="${...train.mapper.image_format}",
    ),
    num_workers=4,
)

dataloader.evaluator = L(OpenImagesEvaluator)(dataset_name="${..test.dataset.names}")
