"""Training engine: a launcher with a CPU/gloo path, DDP on CPU, atomic checkpoints, gradient
clipping, trainer choice and the EFL statistics hook, on top of ``detectron2.engine``; the config
is read in one module, ``efl.engine.defaults`` (docs/train_net.md)."""
from .checkpoint import AtomicDetectionCheckpointer
from .launch import launch
from .optimizer import add_full_model_gradient_clipping
from .results import FINAL_RESULTS_FILE, write_final_results
from .statistics import EqualizedLossStatistics
from .trainers import build_trainer
# last: efl.engine.defaults reads the config with the modules above
from .defaults import load_trained_model  # noqa: E402

__all__ = [
    "AtomicDetectionCheckpointer",
    "EqualizedLossStatistics",
    "FINAL_RESULTS_FILE",
    "add_full_model_gradient_clipping",
    "build_trainer",
    "launch",
    "load_trained_model",
    "write_final_results",
]
