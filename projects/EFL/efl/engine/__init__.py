"""Training engine: a launcher with a CPU/gloo path, DDP on CPU, atomic checkpoints, gradient
clipping, trainer choice and the EFL statistics hook, on top of ``detectron2.engine``."""
from ..compat import create_ddp_model
from .checkpoint import AtomicDetectionCheckpointer, atomic_write, load_trained_model
from .launch import launch
from .optimizer import add_full_model_gradient_clipping
from .results import FINAL_RESULTS_FILE, write_final_results
from .statistics import EqualizedLossStatistics, class_frequency_groups, find_equalized_losses
from .trainers import build_trainer

__all__ = [
    "AtomicDetectionCheckpointer",
    "EqualizedLossStatistics",
    "FINAL_RESULTS_FILE",
    "add_full_model_gradient_clipping",
    "atomic_write",
    "build_trainer",
    "class_frequency_groups",
    "create_ddp_model",
    "find_equalized_losses",
    "launch",
    "load_trained_model",
    "write_final_results",
]
