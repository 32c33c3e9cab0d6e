"""The YOLOX-IP training configs: the recipe's numbers, and a few CPU iterations of a tiny YOLOX-IP
through the mapper, the optimiser groups, the schedule, the EMA and the no-aug switch together."""
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import LazyCall as L
from detectron2.config import LazyConfig, instantiate
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.engine import SimpleTrainer, hooks
from detectron2.structures import BoxMode

from efl.data.yolox_augmentation import YOLOXTrainMapper
from efl.engine import AtomicDetectionCheckpointer
from efl.engine.defaults import build_ema_hooks
from efl.engine.defaults import build_no_aug_switch
from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

REPO = Path(__file__).resolve().parents[2]
SIZES = {"s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
CONFIGS = [(loss, size) for loss in ("efl", "eqfl") for size in SIZES]


def _load(loss, size):
    return LazyConfig.load(str(REPO / f"configs/{loss}_yolox_ip_{size}_300e_rfs.py"))


@pytest.mark.parametrize("loss,size", CONFIGS)
def test_config_holds_the_reference_recipe(loss, size):
    cfg = _load(loss, size)
    batch = cfg.dataloader.train.total_batch_size
    assert batch == 128 and cfg.optimizer.lr == pytest.approx(0.0003125 * 128)
    # an epoch is the 100,170 LVIS v1 train images, not the RFS-expanded count
    assert cfg.train.epoch_iters == math.ceil(100170 / 128) == 783
    assert cfg.train.max_iter == 300 * 783
    assert cfg.lr_multiplier.total_epochs * cfg.train.epoch_iters == cfg.train.max_iter
    assert (cfg.lr_multiplier.warmup_epochs, cfg.lr_multiplier.min_lr_ratio) == (5, 0.05)
    assert cfg.lr_multiplier.constant_epochs == cfg.train.no_aug_epochs == 15
    assert dict(cfg.train.ema) == {"enabled": True, "decay": 0.9998, "tau": 2000}
    assert not cfg.train.clip_grad.enabled and cfg.train.init_checkpoint == ""
    assert cfg.optimizer.nesterov and cfg.optimizer.momentum == 0.9 and cfg.optimizer.weight_decay == 5e-4
    # data: RFS (t 0.001, ceil) picks the first tile; the mapper gets the same dataset for partners
    sampler = cfg.dataloader.train.sampler
    assert sampler._target_ is RepeatFactorTrainingSampler
    assert sampler.repeat_factors.repeat_thresh == 0.001 and sampler.repeat_factors.rounding == "ceil"
    mapper = cfg.dataloader.train.mapper
    assert mapper._target_ is YOLOXTrainMapper and mapper.no_aug is False
    assert mapper.dataset_dicts == cfg.dataloader.train.dataset  # by interpolation
    assert cfg.dataloader.test.mapper.image_format == cfg.model.input_format == "BGR"
    resize = cfg.dataloader.test.mapper.augmentations[0]
    assert (resize.short_edge_length, resize.max_size) == (640, 640)  # longest side 640
    assert tuple(cfg.model.test_pad_to) == (640, 640)
    assert cfg.dataloader.evaluator.max_dets_per_image == 300
    # model size and loss
    depth, width = SIZES[size]
    assert (cfg.model.backbone.bottom_up.depth, cfg.model.backbone.bottom_up.width) == (depth, width)
    cls_loss = cfg.model.cls_loss
    assert cls_loss._target_ is (EqualizedFocalLoss if loss == "efl" else EqualizedQualityFocalLoss)
    assert (cls_loss.gamma_b, cls_loss.scale_factor) == (2.0, 4.0)
    assert cfg.train.output_dir.endswith(f"{loss}_yolox_ip_{size}_300e_rfs")


def test_no_aug_switch_of_the_config_is_at_epoch_285():
    switch = build_no_aug_switch(_load("efl", "s"))
    assert switch.start_iter == 285 * 783


# ----------------------------------------------------------------------------------------------
def _colour_boxes_dataset(root, n=6):
    rng = np.random.RandomState(0)
    dicts = []
    for i in range(n):
        h, w = 96 + 8 * i, 128
        image = rng.randint(0, 60, (h, w, 3)).astype(np.uint8)
        annotations = []
        for k in range(2):
            x, y, bw, bh = 10 + 60 * k, 15 + 5 * i, 40, 30 + 4 * k
            c = (i + k) % 3
            image[y:y + bh, x:x + bw] = [(255, 40, 40), (40, 255, 40), (40, 40, 255)][c]
            annotations.append({"bbox": [x, y, bw, bh], "bbox_mode": BoxMode.XYWH_ABS, "category_id": c})
        path = f"{root}/{i}.png"
        cv2.imwrite(path, image)
        dicts.append({"file_name": path, "image_id": i, "height": h, "width": w, "annotations": annotations})
    return dicts


def test_a_tiny_yolox_ip_trains_with_the_config_pieces_and_switches_to_no_aug(tmp_path, one_thread):
    cfg = _load("efl", "s")
    cfg.model.num_classes = 3
    cfg.model.backbone.bottom_up.width = 0.125
    cfg.model.test_pad_to = (128, 128)
    cfg.dataloader.train.dataset = L(_colour_boxes_dataset)(root=str(tmp_path))
    cfg.dataloader.train.sampler.repeat_factors.repeat_thresh = 0.5
    cfg.dataloader.train.mapper.input_size = 128
    cfg.dataloader.train.mapper.random_size = (3, 5)  # 96..160 px
    cfg.dataloader.train.total_batch_size = 2
    cfg.dataloader.train.num_workers = 0
    # 4 "epochs" of 1 iteration: warm-up 1, cosine 2, constant (no-aug) 1
    cfg.lr_multiplier.total_epochs, cfg.lr_multiplier.warmup_epochs, cfg.lr_multiplier.constant_epochs = 4, 1, 1
    cfg.train.epoch_iters, cfg.train.max_iter, cfg.train.no_aug_epochs = 1, 4, 1
    cfg.train.ema.tau = 1.0
    cfg.train.output_dir = str(tmp_path / "out")
    Path(cfg.train.output_dir).mkdir()

    # what tools/train_net.py does, with the YOLOX-IP hooks
    model = instantiate(cfg.model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    trainer = SimpleTrainer(model, instantiate(cfg.dataloader.train), optimizer)
    checkpointer = AtomicDetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    ema_hooks, evaluation_weights = build_ema_hooks(cfg, model, checkpointer)
    switch = build_no_aug_switch(cfg)
    lrs = []

    class RecordLR(hooks.HookBase):
        def before_step(self):
            lrs.append(optimizer.param_groups[0]["lr"])

    trainer.register_hooks([
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        RecordLR(), *ema_hooks, switch,
        hooks.PeriodicCheckpointer(checkpointer, period=2),
    ])
    trainer.train(0, cfg.train.max_iter)

    losses = trainer.storage.history("total_loss").values()
    assert len(losses) == 4 and all(math.isfinite(v) for v, _ in losses)
    assert switch.switched and switch.start_iter == 3
    lr = cfg.optimizer.lr
    assert lrs == pytest.approx([0.0, lr, lr * (0.05 + 0.95 * 0.5), lr * 0.05])
    ema = ema_hooks[0].ema
    assert ema.last_iter == 3
    assert "ema" in torch.load(Path(cfg.train.output_dir) / "model_final.pth", weights_only=False)

    image = cv2.imread(f"{tmp_path}/0.png")
    inputs = [{"image": torch.as_tensor(image.transpose(2, 0, 1).copy()), "height": 96, "width": 128}]
    model.eval()
    with evaluation_weights(), torch.no_grad():
        for name, value in ema.shadow.items():
            assert torch.equal(model.state_dict()[name], value)
        outputs = model(inputs)
    assert len(outputs[0]["instances"]) <= 300
