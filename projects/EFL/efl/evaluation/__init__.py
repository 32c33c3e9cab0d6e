"""Evaluation: LVIS with a fast backend; the Open Images Challenge metric."""
from .lvis_evaluation import LVIS_BACKENDS, LVISEvaluator, lvis_backend
from .openimages_evaluation import OpenImagesEvaluator

__all__ = ["LVISEvaluator", "LVIS_BACKENDS", "OpenImagesEvaluator", "lvis_backend"]
