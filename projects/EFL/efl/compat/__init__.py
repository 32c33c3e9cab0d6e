"""Everything in the project that patches Detectron2 0.6 or its stack, or reaches into their
private names, in one place. Each piece says which version needs it, and tests/compat has, for
each, a test that fails when it stops working and one that fails when it is no longer needed.

Applied on ``import efl`` (before anything imports detectron2):
    imports.py        NumPy >= 1.24 aliases (lvis 0.5.3, detectron2 0.6), Pillow >= 10
                      ``Image.LINEAR`` (detectron2 0.6), a ``detectron2._C`` stub for the
                      pure-Python build (detectron2 0.6 from pb1-detectron2).
    image_read.py     ``detection_utils.read_image`` errors name the file (detectron2 0.6 passes
                      PIL's "image file is truncated" on without it).
    anchors.py        the anchor grid's ``torch.meshgrid`` with ``indexing="ij"`` (detectron2 0.6
                      omits it, and torch warns on every run).
Called where needed:
    distributed.py    ``find_free_port``, ``create_local_process_group`` (detectron2 0.6 keeps
                      both private to its NCCL-only launcher), ``create_ddp_model`` (detectron2
                      0.6 passes GPU ``device_ids`` for a CPU model).
    engine.py         ``amp_trainer_requires_cuda`` (detectron2 0.6's AMPTrainer asserts CUDA).
    solver.py         ``optimizer_class_with_gradient_clipping`` (private in detectron2 0.6).
    layers.py         ``GroupNormFactory`` (detectron2 0.6's RetinaNetHead probes its norm with
                      one channel).
    data.py           ``lvis_image_root`` (detectron2 0.6's ``load_lvis_json`` joins the image root
                      and the split folder without a separator).
    evaluation.py     ``evaluate_predictions_on_lvis`` (private in detectron2 0.6),
                      ``lvis_module_as`` (detectron2 0.6's LVISEvaluator has no choice of library:
                      it imports ``lvis`` inside its methods, so the module is swapped around them).
    modeling.py       ``dense_box_regression_loss`` (private in detectron2 0.6),
                      ``set_fpn_size_divisibility``, ``fpn_fuse_type`` (detectron2 0.6's FPN keeps
                      both in private attributes).
"""
from .imports import applied_fixes, apply

# Before the imports below: they load detectron2, which needs the import-time fixes.
apply()

from .anchors import explicit_meshgrid_indexing  # noqa: E402
from .data import lvis_image_root  # noqa: E402
from .distributed import create_ddp_model, create_local_process_group, find_free_port  # noqa: E402
from .engine import amp_trainer_requires_cuda  # noqa: E402
from .image_read import UnreadableImageError, name_unreadable_images  # noqa: E402
from .layers import GroupNormFactory  # noqa: E402
from .solver import optimizer_class_with_gradient_clipping  # noqa: E402

name_unreadable_images()
explicit_meshgrid_indexing()

__all__ = [
    "GroupNormFactory",
    "UnreadableImageError",
    "amp_trainer_requires_cuda",
    "applied_fixes",
    "apply",
    "create_ddp_model",
    "create_local_process_group",
    "explicit_meshgrid_indexing",
    "find_free_port",
    "lvis_image_root",
    "name_unreadable_images",
    "optimizer_class_with_gradient_clipping",
]
