"""Small helpers shared by the losses, the detectors and the engine."""
from .distributed import all_reduce_sum_, is_distributed

__all__ = ["all_reduce_sum_", "is_distributed"]
