"""Detectron2 0.6's anchor grid calls ``torch.meshgrid`` without ``indexing``, which torch >= 1.10
warns about on every training and inference run (``UserWarning: torch.meshgrid: in an upcoming
release, it will be required to pass the indexing argument``). The replacement passes
``indexing="ij"``, torch's default, so the anchors are the same."""
import inspect

import torch
from detectron2.modeling import anchor_generator

from .imports import _APPLIED

__all__ = ["explicit_meshgrid_indexing"]

_UPSTREAM_GRID_OFFSETS = anchor_generator._create_grid_offsets


def _create_grid_offsets(size, stride, offset, device):
    grid_height, grid_width = size
    shifts_x = torch.arange(offset * stride, grid_width * stride, step=stride, dtype=torch.float32, device=device)
    shifts_y = torch.arange(offset * stride, grid_height * stride, step=stride, dtype=torch.float32, device=device)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    return shift_x.reshape(-1), shift_y.reshape(-1)


def explicit_meshgrid_indexing():
    """Install the replacement where Detectron2's own function omits ``indexing``. Idempotent."""
    if "indexing" in inspect.getsource(_UPSTREAM_GRID_OFFSETS) or "meshgrid-indexing" in _APPLIED:
        return
    anchor_generator._create_grid_offsets = _create_grid_offsets
    _APPLIED.append("meshgrid-indexing")
