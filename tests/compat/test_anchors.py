"""efl.compat.anchors: Detectron2 0.6's anchor grid without torch's meshgrid warning, same anchors."""
import warnings

import torch
from detectron2.modeling import anchor_generator
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator

import efl.compat
from efl.compat.anchors import _UPSTREAM_GRID_OFFSETS


def _meshgrid_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [w for w in caught if "torch.meshgrid" in str(w.message)]


def test_detectron2s_own_grid_still_warns():
    _, caught = _meshgrid_warnings(lambda: _UPSTREAM_GRID_OFFSETS([3, 5], 8, 0.5, torch.device("cpu")))
    assert caught, "detectron2's _create_grid_offsets no longer warns: drop efl.compat.anchors"


def test_anchors_are_detectron2s_and_come_without_the_warning():
    assert "meshgrid-indexing" in efl.compat.applied_fixes()
    assert anchor_generator._create_grid_offsets is not _UPSTREAM_GRID_OFFSETS
    generator = DefaultAnchorGenerator(sizes=[[24, 32], [48, 64]], aspect_ratios=[[1.0]], strides=[8, 16], offset=0.5)
    features = [torch.zeros(1, 1, 7, 9), torch.zeros(1, 1, 4, 5)]
    anchors, caught = _meshgrid_warnings(lambda: generator(features))
    assert not caught
    for size, stride, boxes in zip([[7, 9], [4, 5]], [8, 16], anchors):
        expected_x, expected_y = _UPSTREAM_GRID_OFFSETS(size, stride, 0.5, torch.device("cpu"))
        shift_x, shift_y = anchor_generator._create_grid_offsets(size, stride, 0.5, torch.device("cpu"))
        assert torch.equal(shift_x, expected_x) and torch.equal(shift_y, expected_y)
        assert boxes.tensor.shape[0] == size[0] * size[1] * 2
