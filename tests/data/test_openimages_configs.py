"""configs/*_oids_*_2x_random.py: the reference's Open Images recipe (efl_oids_r50_2x_random.yaml),
and the data piece building a training batch and the evaluator from the fixture's datasets."""
import os

import pytest

from detectron2.config import LazyConfig, instantiate
from detectron2.data.samplers import TrainingSampler

from efl.data import register_oid_challenge_2019_efl
from efl.evaluation import OpenImagesEvaluator
from tests.data.test_openimages_data import write_oid_fixture, write_oid_root

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = {  # name: (scale factor, depth)
    "efl_oids_r50_2x_random": (8.0, 50),
    "efl_oids_r101_2x_random": (8.0, 101),
    "focal_oids_r50_2x_random": (0.0, 50),
    "focal_oids_r101_2x_random": (0.0, 101),
}


def load(name):
    return LazyConfig.load(os.path.join(REPO, "configs", f"{name}.py"))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_oids_configs_hold_the_reference_recipe(name):
    cfg = load(name)
    scale_factor, depth = CONFIGS[name]
    assert cfg.model.num_classes == 500
    loss = cfg.model.cls_loss
    assert (loss.gamma_b, loss.scale_factor, loss.alpha) == (2.0, scale_factor, 0.25)
    assert cfg.model.backbone.bottom_up.stages.depth == depth
    assert cfg.train.init_checkpoint == f"pretrained/R-{depth}-torchvision.pkl"
    assert cfg.train.output_dir == f"./output/{name}"
    assert cfg.dataloader.train.total_batch_size == 16 and cfg.optimizer.lr == 0.02
    assert cfg.train.max_iter == 180000 and cfg.train.clip_grad.enabled and cfg.train.clip_grad.max_norm == 35.0
    # plain random sampling: no sampler set, so Detectron2's TrainingSampler (a shuffled stream)
    assert "sampler" not in cfg.dataloader.train
    for split in ("train", "test"):
        resize = cfg.dataloader[split].mapper.augmentations[0]
        assert (resize.short_edge_length, resize.max_size) == (800, 1333)
    # 500 iterations of linear warmup from 0.001, x0.1 at 120k and 160k
    lr = instantiate(cfg.lr_multiplier)
    at = {i: lr(i / cfg.train.max_iter) for i in (0, 250, 500, 119999, 120000, 159999, 160000, 179999)}
    assert at[0] == pytest.approx(0.001) and at[250] == pytest.approx(0.5005) and at[500] == pytest.approx(1.0)
    assert at[119999] == pytest.approx(1.0) and at[120000] == pytest.approx(0.1)
    assert at[159999] == pytest.approx(0.1) and at[160000] == pytest.approx(0.01) and at[179999] == pytest.approx(0.01)


def test_data_piece_builds_a_random_training_batch_and_the_evaluator(tmp_path):
    root = str(tmp_path / "root")
    write_oid_root(root, write_oid_fixture(str(tmp_path / "files")))
    register_oid_challenge_2019_efl(root)
    try:
        cfg = load("efl_oids_r50_2x_random")
        cfg.dataloader.train.total_batch_size = 2
        cfg.dataloader.train.num_workers = 0
        loader = instantiate(cfg.dataloader.train)
        # AspectRatioGroupedDataset > DataLoader > ToIterableDataset
        assert isinstance(loader.dataset.dataset.sampler, TrainingSampler)
        batch = next(iter(loader))
        # only img_a and img_b have boxes; img_c is dropped from training
        assert {d["image_id"] for d in batch} <= {"img_a", "img_b"}
        for d in batch:
            # 2:1 images: short side 800 would make the long side 1600, so the long side is capped at 1333
            assert sorted(d["image"].shape[1:]) == [667, 1333]
            assert len(d["instances"]) == {"img_a": 2, "img_b": 1}[d["image_id"]]  # group-of box included
        evaluator = instantiate(cfg.dataloader.evaluator)
        assert isinstance(evaluator, OpenImagesEvaluator) and evaluator._output_dir == cfg.train.output_dir
    finally:
        register_oid_challenge_2019_efl()
