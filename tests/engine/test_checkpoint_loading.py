"""AtomicDetectionCheckpointer's loading: weights that do not fit the model are errors naming the
file and the weights (Detectron2 only logs them and loads the rest), a partial load says what it
skipped, and --resume goes past an unreadable last checkpoint to the newest readable one."""
import logging

import pytest
import torch
from torch import nn

from efl.engine.checkpoint import AtomicDetectionCheckpointer, CheckpointError
from efl.losses import EqualizedFocalLoss


class TinyDetector(nn.Module):
    """A backbone, a classifier over ``num_classes`` and an EFL loss with its statistics buffers."""

    def __init__(self, num_classes=6):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3)
        self.cls_score = nn.Conv2d(4, num_classes, 1)
        self.cls_loss = EqualizedFocalLoss(num_classes=num_classes)


def save_model(path, model, **extra):
    torch.save({"model": model.state_dict(), **extra}, path)
    return str(path)


def test_evaluation_refuses_a_checkpoint_of_another_class_count(tmp_path):
    path = save_model(tmp_path / "twelve.pth", TinyDetector(num_classes=12))
    with pytest.raises(CheckpointError) as info:
        AtomicDetectionCheckpointer(TinyDetector(num_classes=6), load_mode="strict").load(path)
    message = str(info.value)
    assert path in message and "cls_score.weight (12, 4, 1, 1) in the file, (6, 4, 1, 1) in the model" in message


def test_training_init_refuses_other_shapes_unless_partial_and_then_lists_them(tmp_path, caplog):
    source = TinyDetector(num_classes=12)
    path = save_model(tmp_path / "twelve.pth", source)
    with pytest.raises(CheckpointError, match="init_checkpoint_partial=True"):
        AtomicDetectionCheckpointer(TinyDetector(), load_mode="init").load(path)

    model = TinyDetector()
    classifier_before = model.cls_score.weight.clone()
    with caplog.at_level(logging.INFO, logger="fvcore.common.checkpoint"):
        AtomicDetectionCheckpointer(model, load_mode="partial").load(path)
    # the weights that fit are loaded, the classifier keeps its initialisation
    torch.testing.assert_close(model.backbone.weight, source.backbone.weight, rtol=0, atol=0)
    assert torch.equal(model.cls_score.weight, classifier_before)
    log = caplog.text
    assert "Skipped 5 weight(s) of another shape" in log  # cls_score.{weight,bias}, 3 buffers
    assert "cls_score.weight (12, 4, 1, 1) in the file, (6, 4, 1, 1) in the model" in log
    assert "Loaded 2 of 7 model weights" in log


def test_evaluation_refuses_missing_and_unexpected_weights_but_not_missing_statistics(tmp_path):
    model = TinyDetector()
    state = model.state_dict()
    without_classifier = {k: v for k, v in state.items() if not k.startswith("cls_score.")}
    path = str(tmp_path / "backbone.pth")
    torch.save({"model": without_classifier}, path)
    with pytest.raises(CheckpointError, match=r"2 model weight\(s\) not in the file: cls_score.weight, cls_score.bias"):
        AtomicDetectionCheckpointer(TinyDetector(), load_mode="strict").load(path)

    torch.save({"model": {**state, "extra.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=r"1 file weight\(s\) not in the model: extra.weight"):
        AtomicDetectionCheckpointer(TinyDetector(), load_mode="strict").load(path)

    # the EFL statistics are training state: weights without them still evaluate
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("cls_loss.")}}, path)
    AtomicDetectionCheckpointer(TinyDetector(), load_mode="strict").load(path)


def test_training_init_from_a_backbone_only_file_loads_it_and_counts_the_rest(tmp_path, caplog):
    source = TinyDetector()
    path = str(tmp_path / "backbone.pth")
    torch.save({"model": {k: v for k, v in source.state_dict().items() if k.startswith("backbone.")}}, path)
    model = TinyDetector()
    with caplog.at_level(logging.INFO, logger="fvcore.common.checkpoint"):
        AtomicDetectionCheckpointer(model, load_mode="init").load(path)
    assert torch.equal(model.backbone.weight, source.backbone.weight)
    assert "Loaded 2 of 7 model weights" in caplog.text


def test_a_file_of_which_no_weight_fits_is_an_error_in_every_mode(tmp_path):
    path = str(tmp_path / "other.pth")
    torch.save({"model": {"fc.weight": torch.zeros(3, 3)}}, path)
    for mode in ("strict", "init", "partial"):
        with pytest.raises(CheckpointError, match="none of its weights fits the model"):
            AtomicDetectionCheckpointer(TinyDetector(), load_mode=mode).load(path)


def test_a_missing_or_truncated_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        AtomicDetectionCheckpointer(TinyDetector()).load(str(tmp_path / "nope.pth"))
    path = save_model(tmp_path / "model.pth", TinyDetector())
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} cannot be read"):
        AtomicDetectionCheckpointer(TinyDetector()).load(path)


def _write_run(directory, iterations):
    """Checkpoints of a run at ``iterations`` (the model's bias = the iteration), each newer."""
    checkpointer = AtomicDetectionCheckpointer(TinyDetector(), str(directory))
    for it in iterations:
        with torch.no_grad():
            checkpointer.model.cls_score.bias.fill_(it)
        checkpointer.save(f"model_{it:07d}", iteration=it)
    return checkpointer


def test_resume_goes_past_a_truncated_last_checkpoint_to_the_newest_readable_one(tmp_path, caplog):
    _write_run(tmp_path, [3, 7, 11])
    last = tmp_path / "model_0000011.pth"
    last.write_bytes(last.read_bytes()[:100])
    model = TinyDetector()
    with caplog.at_level(logging.WARNING, logger="fvcore.common.checkpoint"):
        extra = AtomicDetectionCheckpointer(model, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 7 and torch.all(model.cls_score.bias == 7)
    assert f"Resuming from {tmp_path / 'model_0000007.pth'}" in caplog.text
    assert f"Cannot resume from {last}" in caplog.text


def test_resume_without_any_readable_checkpoint_is_an_error_naming_the_files(tmp_path):
    _write_run(tmp_path, [3])
    path = tmp_path / "model_0000003.pth"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=f"no readable checkpoint in {tmp_path}.*{path}"):
        AtomicDetectionCheckpointer(TinyDetector(), str(tmp_path)).resume_or_load("", resume=True)
