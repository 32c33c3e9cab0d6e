import os

import torch

from detectron2.config import LazyConfig, instantiate
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.evaluation import LVISEvaluator
from efl.data import register_synthetic_lt, repeat_factors_from_category_frequency
from efl.data.synthetic import PRESETS

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "common", "data")


def test_synthetic_config_builds_rfs_loader_and_lvis_evaluator(tmp_path):
    register_synthetic_lt("efl_test_cfg_tiny", PRESETS["tiny"], cache_root=str(tmp_path))
    cfg = LazyConfig.load(os.path.join(CONFIGS, "synthetic_lt.py"))
    cfg.dataloader.train.dataset.names = "efl_test_cfg_tiny_train"
    cfg.dataloader.test.dataset.names = "efl_test_cfg_tiny_val"

    sampler = instantiate(cfg.dataloader.train.sampler)
    assert isinstance(sampler, RepeatFactorTrainingSampler)
    dicts = instantiate(cfg.dataloader.train.dataset)
    expected = repeat_factors_from_category_frequency(
        dicts, repeat_thresh=cfg.dataloader.train.sampler.repeat_factors.repeat_thresh, rounding="ceil"
    )
    # Integer factors: Detectron2's stochastic part is zero, every epoch is the ceil expansion.
    assert torch.equal(sampler._int_part, expected) and not sampler._frac_part.any()
    assert expected.max() > 1  # the LVIS-equivalent threshold does repeat the rare classes

    batch = next(iter(instantiate(cfg.dataloader.train)))
    assert len(batch) == cfg.dataloader.train.total_batch_size
    assert batch[0]["image"].shape[0] == 3 and min(batch[0]["image"].shape[1:]) in (128, 144, 160)
    assert len(batch[0]["instances"]) > 0

    evaluator = instantiate(cfg.dataloader.evaluator)
    assert isinstance(evaluator, LVISEvaluator) and evaluator._max_dets_per_image == 300
    assert evaluator._metadata.name == "efl_test_cfg_tiny_val"
    assert len(instantiate(cfg.dataloader.test).dataset) == PRESETS["tiny"].num_val_images


def test_lvis_config_matches_the_reference_data_settings():
    cfg = LazyConfig.load(os.path.join(CONFIGS, "lvis_v1.py"))
    train, test = cfg.dataloader.train, cfg.dataloader.test
    assert train.dataset.names == "lvis_v1_train_efl" and test.dataset.names == "lvis_v1_val_efl"
    resize = train.mapper.augmentations[0]
    assert list(resize.short_edge_length) == [640, 672, 704, 736, 768, 800] and resize.max_size == 1333
    assert resize.sample_style == "choice" and train.mapper.augmentations[1].horizontal
    assert test.mapper.augmentations[0].short_edge_length == 800 and test.mapper.augmentations[0].max_size == 1333
    rfs = train.sampler.repeat_factors
    assert (rfs.repeat_thresh, rfs.sqrt, rfs.rounding) == (0.001, True, "ceil")
    assert train.mapper.image_format == "RGB" and test.mapper.image_format == "RGB"
    assert cfg.dataloader.evaluator.max_dets_per_image == 300
    assert cfg.dataloader.evaluator.dataset_name == "lvis_v1_val_efl"


def test_detectron2_lvis_evaluator_scores_ground_truth_of_the_synthetic_val_as_ap_1(tmp_path):
    from detectron2.data import DatasetCatalog
    from detectron2.structures import Boxes, BoxMode, Instances

    register_synthetic_lt("efl_test_eval_tiny", PRESETS["tiny"], cache_root=str(tmp_path))
    val = DatasetCatalog.get("efl_test_eval_tiny_val")
    evaluator = LVISEvaluator("efl_test_eval_tiny_val", tasks=("bbox",), distributed=False, max_dets_per_image=300)
    evaluator.reset()
    for record in val:
        boxes = [BoxMode.convert(a["bbox"], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) for a in record["annotations"]]
        instances = Instances((record["height"], record["width"]))
        instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
        instances.scores = torch.ones(len(boxes))
        instances.pred_classes = torch.tensor([a["category_id"] for a in record["annotations"]])
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    results = evaluator.evaluate()["bbox"]
    assert abs(results["AP"] - 100.0) < 1e-6 and abs(results["APr"] - 100.0) < 1e-6
