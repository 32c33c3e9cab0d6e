"""efl.compat's solver, layers, data and engine pieces: each works, and each is still needed by
the installed detectron2."""
import json
import warnings

import pytest
import torch
from torch import nn

import detectron2.solver
from detectron2.data.datasets.lvis import load_lvis_json
from detectron2.engine import AMPTrainer
from detectron2.layers import ShapeSpec
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from efl.compat import (
    GroupNormFactory,
    amp_trainer_requires_cuda,
    lvis_image_root,
    optimizer_class_with_gradient_clipping,
)


def test_clipping_optimizer_class_clips_before_each_step():
    p = nn.Parameter(torch.zeros(2))
    seen = []

    def clip_to_unit_norm(params):
        params = list(params)
        seen.append(len(params))
        torch.nn.utils.clip_grad_norm_(params, 1.0)

    optimizer = torch.optim.SGD([p], lr=1.0)
    optimizer.__class__ = optimizer_class_with_gradient_clipping(torch.optim.SGD, global_clipper=clip_to_unit_norm)
    p.grad = torch.tensor([3.0, 4.0])
    optimizer.step()
    assert seen == [1]
    torch.testing.assert_close(p.detach(), torch.tensor([-0.6, -0.8]))  # -grad * 1 / 5
    assert isinstance(optimizer, torch.optim.SGD)


def test_detectron2_still_keeps_its_clipping_class_factory_private():
    assert not hasattr(detectron2.solver, "generate_optimizer_class_with_gradient_clipping"), \
        "detectron2 exports it now: call the public name"


def _head(norm):
    return RetinaNetHead(input_shape=[ShapeSpec(channels=64)] * 2, num_classes=3, num_anchors=2,
                         conv_dims=[64, 64], norm=norm)


def test_detectron2_retinanet_head_still_probes_its_norm_with_one_channel():
    with pytest.raises(ValueError, match="divisible by num_groups"):
        _head(lambda channels: nn.GroupNorm(32, channels))


def test_group_norm_factory_builds_the_head_with_32_groups_in_its_towers():
    head = _head(GroupNormFactory(32))
    norms = [m for m in head.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 4 and all(m.num_groups == 32 and m.num_channels == 64 for m in norms)
    assert GroupNormFactory(32)(1).num_groups == 1


@pytest.fixture
def lvis_json(tmp_path):
    path = tmp_path / "lvis.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "height": 10, "width": 10, "neg_category_ids": [], "not_exhaustive_category_ids": [],
                    "coco_url": "http://images.cocodataset.org/train2017/000000000001.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16,
                         "segmentation": [[1, 1, 5, 1, 5, 5]]}],
        "categories": [{"id": 1, "name": "a", "frequency": "r", "synset": "a.n.01", "synonyms": ["a"]}],
    }))
    return str(path)


def test_detectron2_load_lvis_json_still_joins_root_and_split_without_a_separator(lvis_json):
    (record,) = load_lvis_json(lvis_json, "/data/lvis", None)
    assert record["file_name"] == "/data/lvistrain2017/000000000001.jpg", \
        "detectron2 joins the paths itself now: drop lvis_image_root"


def test_lvis_image_root_gives_the_image_path_under_the_split_folder(lvis_json):
    for root in ("/data/lvis", "/data/lvis/"):
        (record,) = load_lvis_json(lvis_json, lvis_image_root(root), None)
        assert record["file_name"] == "/data/lvis/train2017/000000000001.jpg"


def test_amp_trainer_requires_cuda_matches_what_detectron2s_amp_trainer_does(monkeypatch):
    assert amp_trainer_requires_cuda(), "detectron2's AMPTrainer runs without CUDA: drop the fallback"

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, batch):
            return {"loss": self.w.sum()}

    model = Model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GradScaler warns without CUDA
        trainer = AMPTrainer(model, [[{}]], torch.optim.SGD(model.parameters(), lr=0.1))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    trainer._data_loader_iter = iter([[{}]])
    with pytest.raises(AssertionError, match="CUDA is required"):
        trainer.run_step()
