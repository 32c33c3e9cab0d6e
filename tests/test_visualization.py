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


def test_detection_grid_lists_numbered_labels_under_each_panel_and_notes_empty_panels():
    import numpy as np
    import torch
    from detectron2.data import Metadata
    from detectron2.structures import Boxes, Instances

    from efl.visualization import draw_detection_grid

    image = np.full((40, 60, 3), 200, dtype=np.uint8)
    gt = Instances((40, 60))
    # one box touching the right border, one inside; a long name that would not fit on the picture
    # and two boxes sharing their top-left corner, whose number tags must not hide each other
    gt.gt_boxes = Boxes(torch.tensor([[50.0, 5.0, 60.0, 20.0], [5.0, 5.0, 20.0, 30.0], [5.0, 5.0, 25.0, 35.0]]))
    gt.gt_classes = torch.tensor([0, 1, 2])
    empty = Instances((40, 60))
    empty.pred_boxes, empty.scores, empty.pred_classes = Boxes(torch.zeros(0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.long)
    metadata = Metadata(name="viz_test", thing_classes=["a_very_long_class_name_for_the_label_list", "b", "c"],
                        class_frequency=["r", "f", "c"])
    grid = draw_detection_grid([image], [gt], {"model": [empty]}, metadata, scale=2.0)
    title, picture = 28, 80
    gt_panel, empty_panel = grid[:, :120], grid[:, 124:244]
    # below the picture: a line per box with its group's colour square (rare red, frequent blue)
    legend = gt_panel[title + picture:]
    assert (legend[6:16, 4:14] == (214, 39, 40)).all() and (legend[22:32, 4:14] == (31, 119, 180)).all()
    # the box at the right border keeps its number tag inside the picture
    assert (gt_panel[title + 10:title + 20, 100:118] == (214, 39, 40)).all(axis=-1).any()
    # the shared corner's tags are stacked: both tags' fills (frequent blue, common orange) show
    corner = gt_panel[title + 12:title + 60, 12:22]
    for rgb in [(31, 119, 180), (230, 120, 0)]:
        assert (corner == rgb).all(axis=-1).sum() > 20, rgb
    # the model found nothing: its panel says so instead of staying blank
    note = empty_panel[title + picture:]
    assert ((note == 110).all(axis=-1)).any()
    assert grid.shape[1] == 120 + 4 + 120
