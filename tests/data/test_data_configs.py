"""The data pieces of configs/common/data and the schedule built on them."""
import os

import pytest
import torch
from omegaconf import ListConfig

from detectron2.config import LazyConfig, instantiate
from detectron2.data.samplers import RepeatFactorTrainingSampler
from efl.data import expanded_epoch_length, register_synthetic_lt, repeat_factors_from_category_frequency
from efl.data.synthetic import PRESETS
from efl.evaluation import LVISEvaluator

from tests.scripts import load_script

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
CONFIGS = os.path.join(REPO, "configs", "common", "data")


def _flatten(node, prefix=""):
    """{dotted key: leaf value} of a LazyConfig node; lists of configs are indexed, lists of
    plain values are leaves."""
    if hasattr(node, "items"):
        items = node.items()
    elif isinstance(node, (list, tuple, ListConfig)) and any(hasattr(v, "items") for v in node):
        items = enumerate(node)
    else:
        return {prefix: list(node) if isinstance(node, (list, tuple, ListConfig)) else node}
    out = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _tiny_synthetic_config(tmp_path, name):
    register_synthetic_lt(name, PRESETS["tiny"], cache_root=str(tmp_path))
    cfg = LazyConfig.load(os.path.join(CONFIGS, "synthetic_lt.py"))
    cfg.dataloader.train.dataset.names = f"{name}_train"
    cfg.dataloader.test.dataset.names = f"{name}_val"
    return cfg


def test_synthetic_piece_is_the_lvis_piece_with_only_names_and_scale_changed():
    lvis = _flatten(LazyConfig.load(os.path.join(CONFIGS, "lvis_v1.py")).dataloader)
    synthetic = _flatten(LazyConfig.load(os.path.join(CONFIGS, "synthetic_lt.py")).dataloader)
    assert set(lvis) == set(synthetic)
    changed = {k for k in lvis if lvis[k] != synthetic[k]}
    scale = {
        "train.dataset.names", "test.dataset.names", "train.sampler.repeat_factors.repeat_thresh",
        "train.mapper.augmentations.0.short_edge_length", "train.mapper.augmentations.0.max_size",
        "test.mapper.augmentations.0.short_edge_length", "test.mapper.augmentations.0.max_size",
        "train.total_batch_size", "train.num_workers", "test.num_workers",
        # interpolations that follow the dataset names
        "train.sampler.repeat_factors.dataset_dicts.names", "evaluator.dataset_name",
    }
    assert changed <= scale, sorted(changed - scale)
    # the sampler, rounding, mapper format and evaluator are inherited, not restated
    for key in ("train.sampler.repeat_factors.rounding", "train.mapper.image_format", "evaluator._target_",
                "evaluator.backend", "evaluator.max_dets_per_image"):
        assert key not in changed


def test_synthetic_config_builds_rfs_loader_and_the_projects_lvis_evaluator(tmp_path):
    cfg = _tiny_synthetic_config(tmp_path, "efl_test_cfg_tiny")
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


def _load_schedules():
    return load_script("configs/common/schedules.py")


def test_schedule_from_the_configured_datasets_size_sees_each_image_ceil_r_times_per_epoch(tmp_path):
    cfg = _tiny_synthetic_config(tmp_path, "efl_test_sched_tiny")
    factors = instantiate(cfg.dataloader.train.sampler.repeat_factors)
    batch = cfg.dataloader.train.total_batch_size
    length = expanded_epoch_length(factors)  # E = sum_i ceil(r_i)
    epochs = 24
    max_iter, multiplier = _load_schedules().rfs_schedule(length, epochs=epochs, ims_per_batch=batch)
    per_epoch = max_iter // epochs
    # An epoch is the fewest iterations of B images that hold the expanded list.
    assert max_iter % epochs == 0 and (per_epoch - 1) * batch < length <= per_epoch * batch
    # The first epoch's indices show every image ceil(r_i) times, and the lr steps at epoch 16.
    stream = iter(instantiate(cfg.dataloader.train.sampler))
    epoch = torch.tensor([next(stream) for _ in range(int(length))])
    assert torch.equal(torch.bincount(epoch, minlength=len(factors)), factors.long())
    lr = instantiate(multiplier)
    assert lr((16 * per_epoch - 1) / max_iter) == pytest.approx(1.0)
    assert lr(16 * per_epoch / max_iter) == pytest.approx(0.1)


def test_projects_default_evaluator_scores_ground_truth_of_the_synthetic_val_as_ap_100(tmp_path):
    from detectron2.data import DatasetCatalog
    from detectron2.structures import Boxes, BoxMode, Instances

    cfg = _tiny_synthetic_config(tmp_path, "efl_test_eval_tiny")
    val = DatasetCatalog.get("efl_test_eval_tiny_val")
    evaluator = instantiate(cfg.dataloader.evaluator)
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
