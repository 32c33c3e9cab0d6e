"""The YOLOX-IP CPU demo configs (configs/demo/{efl,focal}_yolox_ip_nano_synthetic.py): the recipe
scaled to 160 px images, the two configs differ only in the loss, and a few CPU iterations of the
nano YOLOX-IP on the tiny synthetic set lower the loss and move the EFL statistics."""
import math
from pathlib import Path

import numpy as np
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.events import EventStorage
from omegaconf import OmegaConf

from efl.data.yolox_augmentation import YOLOXTrainMapper
from efl.engine.defaults import build_no_aug_switch
from efl.losses import EqualizedFocalLoss
from efl.losses.equalized_loss_base import find_equalized_losses

REPO = Path(__file__).resolve().parents[2]


def _load(loss):
    return LazyConfig.load(str(REPO / f"configs/demo/{loss}_yolox_ip_nano_synthetic.py"))


def test_the_recipe_is_scaled_to_the_160_px_synthetic_images():
    cfg = _load("efl")
    assert cfg.dataloader.train.dataset.names == "synthetic_lt_train" and cfg.model.num_classes == 48
    mapper = cfg.dataloader.train.mapper
    assert mapper._target_ is YOLOXTrainMapper and mapper.input_size == 160
    assert mapper.dataset_dicts == cfg.dataloader.train.dataset  # partners from the same set
    # longest side 128..192 px on the stride-32 grid: the reference's 480..800 at 640 / 4
    sizes = [mapper.size_step * k for k in range(mapper.random_size[0], mapper.random_size[1] + 1)]
    assert sizes == [128, 160, 192]
    resize = cfg.dataloader.test.mapper.augmentations[0]
    assert (resize.short_edge_length, resize.max_size) == (160, 160)
    assert tuple(cfg.model.test_pad_to) == (160, 160)
    assert cfg.dataloader.test.mapper.image_format == cfg.model.input_format == "BGR"
    # an epoch is the 800 training images; the last 2 epochs without Mosaic / affine / MixUp
    batch = cfg.dataloader.train.total_batch_size
    assert cfg.train.epoch_iters == math.ceil(800 / batch)
    assert cfg.train.max_iter == cfg.lr_multiplier.total_epochs * cfg.train.epoch_iters
    assert build_no_aug_switch(cfg).start_iter == cfg.train.max_iter - 2 * cfg.train.epoch_iters
    assert cfg.train.ema.enabled and cfg.train.device == "cpu"
    assert cfg.model.cls_loss._target_ is EqualizedFocalLoss and cfg.model.cls_loss.scale_factor == 4.0
    # departures from the LVIS recipe for the short run, each explained in the config
    assert tuple(mapper.scale) == (0.5, 1.5) and cfg.model.head.prior_prob == 0.001


def test_focal_config_is_the_efl_config_with_scale_factor_0():
    efl, focal = _load("efl"), _load("focal")
    assert focal.model.cls_loss.scale_factor == 0.0
    focal.model.cls_loss.scale_factor = efl.model.cls_loss.scale_factor
    assert focal.train.output_dir != efl.train.output_dir
    focal.train.output_dir = efl.train.output_dir
    for key in ("model", "dataloader", "optimizer", "lr_multiplier", "train"):
        assert OmegaConf.to_container(focal[key]) == OmegaConf.to_container(efl[key]), key


def test_a_few_cpu_iterations_on_the_tiny_synthetic_set_lower_the_loss_and_move_the_efl_statistics(one_thread):
    cfg = _load("efl")
    cfg.dataloader.train.dataset.names = "synthetic_lt_tiny_train"
    cfg.model.num_classes = 12
    cfg.dataloader.train.total_batch_size = 2
    # the demo's lr 0.02, without warm-up
    np.random.seed(0)  # the mapper's draws
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)  # the config's lr, without warm-up
    # one batch through the whole YOLOX pipeline (Mosaic, affine, MixUp, HSV, flip, size), fixed:
    # the loss of a batch the detector keeps seeing must fall
    batch = next(iter(instantiate(cfg.dataloader.train)))
    classes = torch.cat([d["instances"].gt_classes for d in batch]).unique()
    assert len(classes) > 0
    [(_, efl)] = find_equalized_losses(model)
    assert torch.equal(efl.pos_grad, torch.zeros(12)) and torch.equal(efl.pos_neg, torch.ones(12))

    model.train()
    losses, cls_losses = [], []
    with EventStorage():
        for _ in range(32):
            loss_dict = model(batch)
            loss = sum(loss_dict.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            cls_losses.append(loss_dict["loss_cls"].item())
    assert all(math.isfinite(v) for v in losses)
    # The total first rises for a few iterations: the IoU branch starts at the prior 0.001 while
    # its targets, the IoUs of the improving boxes, grow; then it falls.
    assert sum(losses[-3:]) < 0.75 * sum(losses[:3]), losses
    assert sum(cls_losses[-3:]) < 0.8 * sum(cls_losses[:3]), cls_losses
    # positive gradient only for the classes of the batch, negative gradient for every class
    present = torch.zeros(12, dtype=torch.bool)
    present[classes] = True
    assert (efl.pos_grad[present] > 0).all() and (efl.pos_grad[~present] == 0).all()
    assert (efl.neg_grad > 0).all()
    # g_j = pos / neg (clamped to [0, 1]) moved from its starting 1 to 0 for the absent classes
    assert (efl.pos_neg[~present] == 0).all()
    expected = (efl.pos_grad[present] / efl.neg_grad[present]).clamp(max=1)
    torch.testing.assert_close(efl.pos_neg[present], expected)
