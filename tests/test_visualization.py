"""efl.visualization: the per-class statistics plot reads each model's one loss."""
import pytest
import torch
from torch import nn

from detectron2.data import Metadata
from efl.losses import EqualizedFocalLoss
from efl.visualization import plot_class_statistics


def _metadata():
    return Metadata(name="plot").set(
        class_image_count=[{"id": 1, "image_count": 3}, {"id": 2, "image_count": 300}],
        class_frequency=["r", "f"],
    )


def test_class_statistics_plot_is_written_for_models_with_one_loss(tmp_path):
    model = nn.Module()
    model.cls_loss = EqualizedFocalLoss(num_classes=2)
    model.cls_loss.pos_grad.copy_(torch.tensor([1.0, 3.0]))
    model.cls_loss.neg_grad.copy_(torch.tensor([4.0, 2.0]))
    path = tmp_path / "stats.png"
    plot_class_statistics(str(path), _metadata(), {"efl": model}, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_without_exactly_one_loss_is_an_error_naming_it(tmp_path):
    model = nn.Module()
    model.a, model.b = EqualizedFocalLoss(num_classes=2), EqualizedFocalLoss(num_classes=2)
    with pytest.raises(ValueError, match="model 'two' holds 2 EFL/EQFL losses"):
        plot_class_statistics(str(tmp_path / "x.png"), _metadata(), {"two": model})
