"""The switch to the no-augmentation loader: the iteration, resume past it, and the loader it builds
from a LazyConfig."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_train_loader
from detectron2.engine import SimpleTrainer
from detectron2.structures import BoxMode
from omegaconf import OmegaConf
from torch import nn

from efl.data.yolox_augmentation import YOLOXTrainMapper
from efl.engine.defaults import build_no_aug_switch, with_train_schema
from efl.engine.no_aug_switch import NoAugmentationSwitch, no_aug_start_iter


def test_switch_iteration_is_the_start_of_the_last_no_aug_epochs():
    assert no_aug_start_iter(max_iter=300 * 783, epoch_iters=783, no_aug_epochs=15) == 285 * 783
    with pytest.raises(ValueError, match="do not fit"):
        no_aug_start_iter(max_iter=10, epoch_iters=1, no_aug_epochs=11)


class _Recorder(nn.Module):
    """Records which loader each training iteration read from."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, batch):
        self.seen.append(batch)
        return {"loss": self.w.sum() * 0}


def _stream(tag):
    while True:
        yield tag


def _train(start_iter, max_iter, switch_at):
    model = _Recorder()
    trainer = SimpleTrainer(model, _stream("aug"), torch.optim.SGD(model.parameters(), lr=0.1))
    built = []

    def build():
        built.append(True)
        return _stream("no_aug")

    trainer.register_hooks([NoAugmentationSwitch(start_iter=switch_at, build_loader=build)])
    trainer.train(start_iter, max_iter)
    return model.seen, built


def test_iterations_from_the_switch_on_read_the_new_loader():
    seen, built = _train(0, 8, switch_at=5)
    assert seen == ["aug"] * 5 + ["no_aug"] * 3
    assert built == [True]  # built once


def test_a_run_resumed_past_the_switch_starts_on_the_new_loader():
    seen, built = _train(6, 8, switch_at=5)
    assert seen == ["no_aug"] * 2 and built == [True]


def test_a_run_resumed_before_the_switch_still_switches_at_its_iteration():
    seen, _ = _train(3, 8, switch_at=5)
    assert seen == ["aug"] * 2 + ["no_aug"] * 3


def _one_image_dataset(root):
    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[10:30, 20:50] = (0, 0, 255)
    path = f"{root}/a.png"
    cv2.imwrite(path, image)
    return [{"file_name": path, "image_id": 1, "height": 60, "width": 80,
             "annotations": [{"bbox": [20, 10, 30, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}]}]


def test_build_from_config_rebuilds_the_train_loader_with_the_no_aug_mapper(tmp_path):
    cfg = OmegaConf.create()
    cfg.train = dict(max_iter=30, epoch_iters=2, no_aug_epochs=15)
    cfg.dataloader = dict(train=L(build_detection_train_loader)(
        dataset=L(_one_image_dataset)(root=str(tmp_path)),
        mapper=L(YOLOXTrainMapper)(dataset_dicts="${..dataset}", no_aug=False),
        total_batch_size=1,
        aspect_ratio_grouping=False,
        num_workers=0,
    ))
    switch = build_no_aug_switch(cfg)
    assert switch.start_iter == 0  # 30 - 15 x 2
    assert cfg.dataloader.train.mapper.no_aug is False  # the config itself is left alone
    batch = next(iter(switch.build_loader()))
    instances = batch[0]["instances"]
    # Without Mosaic (4 copies of the only image) and MixUp (a fifth), the one box stays one box,
    # scaled with its aspect ratio 30 x 20.
    assert len(instances) == 1
    w, h = instances.gt_boxes.tensor[0, 2:] - instances.gt_boxes.tensor[0, :2]
    assert float(w / h) == pytest.approx(1.5, rel=1e-6)


def test_no_switch_without_no_aug_epochs_and_a_clear_error_for_a_mapper_without_no_aug():
    assert build_no_aug_switch(with_train_schema(OmegaConf.create({"train": {"max_iter": 10}}))) is None
    cfg = OmegaConf.create({"train": {"max_iter": 10, "epoch_iters": 1, "no_aug_epochs": 2},
                            "dataloader": {"train": {"mapper": {"is_train": True}}}})
    with pytest.raises(ValueError, match="no_aug"):
        build_no_aug_switch(cfg)
