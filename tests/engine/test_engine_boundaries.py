"""The engine knows other modules only through what they declare: a module's training-state
buffers (the checkpointer), a mapper's no-augmentation arguments (the no-aug switch), the DDP
wrapper through one unwrap helper."""
import os

import pytest
import torch
from detectron2.config import LazyCall as L
from omegaconf import OmegaConf
from torch import nn

from efl.engine import AtomicDetectionCheckpointer
from efl.engine.checkpoint import CheckpointError
from efl.engine.defaults import build_no_aug_switch, with_train_schema
from efl.losses import EqualizedFocalLoss
from efl.utils.distributed import unwrap_model


class _Counter(nn.Module):
    """A module that is not an equalized loss and keeps a training-time count."""

    def __init__(self, declared):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(2))
        self.register_buffer("count", torch.zeros(2))
        if declared:
            self.training_state_buffers = ("count",)


def _save_without_count(tmp_path):
    path = str(tmp_path / "weights.pth")
    torch.save({"model": {"head.weight": torch.full((2,), 3.0)}}, path)
    return path


def test_a_buffer_a_module_declares_training_state_may_be_missing_from_an_evaluated_file(tmp_path):
    path = _save_without_count(tmp_path)
    model = nn.Module()
    model.head = _Counter(declared=True)
    AtomicDetectionCheckpointer(model, load_mode="strict").load(path)
    assert torch.equal(model.head.weight.detach(), torch.full((2,), 3.0))
    # without the declaration the same missing buffer is an error, as any missing weight
    undeclared = nn.Module()
    undeclared.head = _Counter(declared=False)
    with pytest.raises(CheckpointError, match="head.count"):
        AtomicDetectionCheckpointer(undeclared, load_mode="strict").load(path)


def test_the_equalized_losses_declare_their_statistics_and_give_copies_of_them():
    loss = EqualizedFocalLoss(num_classes=3)
    assert set(loss.training_state_buffers) == {name for name, _ in loss.named_buffers()}
    state = loss.statistics_state()
    state["pos_grad"] += 1.0
    assert torch.equal(loss.pos_grad, torch.zeros(3))  # a copy, not the buffer


class _OtherMapper:
    """A mapper whose no-augmentation form is set through other argument names."""

    NO_AUGMENTATION_ARGUMENTS = {"mosaic": False, "mixup": False}

    def __init__(self, mosaic=True, mixup=True):
        self.mosaic, self.mixup = mosaic, mixup


def _loader(mapper):
    return mapper


def test_the_no_aug_switch_sets_the_arguments_the_mapper_declares():
    cfg = with_train_schema(OmegaConf.create({"train": {"max_iter": 10, "epoch_iters": 1, "no_aug_epochs": 2}}))
    cfg.dataloader = {"train": L(_loader)(mapper=L(_OtherMapper)(mosaic=True))}
    switch = build_no_aug_switch(cfg)
    assert switch.start_iter == 8
    mapper = switch.build_loader()
    assert (mapper.mosaic, mapper.mixup) == (False, False)
    assert cfg.dataloader.train.mapper.mosaic is True  # the config itself is left alone


def test_unwrap_model_looks_through_distributed_data_parallel(tmp_path):
    torch.distributed.init_process_group("gloo", init_method=f"file://{os.path.join(tmp_path, 'pg')}",
                                         rank=0, world_size=1)
    try:
        inner = nn.Linear(2, 1)
        wrapped = nn.parallel.DistributedDataParallel(inner)
        assert unwrap_model(wrapped) is inner and unwrap_model(inner) is inner
        assert [n for n, _ in unwrap_model(wrapped).named_parameters()] == ["weight", "bias"]
    finally:
        torch.distributed.destroy_process_group()
