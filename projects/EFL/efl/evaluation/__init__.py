"""Evaluation: LVIS with a fast backend."""
from .lvis_evaluation import LVIS_BACKENDS, LVISEvaluator, lvis_backend

__all__ = ["LVISEvaluator", "LVIS_BACKENDS", "lvis_backend"]
