"""Evaluation: LVIS with a fast backend; the Open Images Challenge metric (its evaluator lives with
the rest of Open Images in `efl.data.openimages`)."""
from ..data.openimages.evaluator import OpenImagesEvaluator
from .lvis_evaluation import LVIS_BACKENDS, LVISEvaluator, lvis_backend

__all__ = ["LVISEvaluator", "LVIS_BACKENDS", "OpenImagesEvaluator", "lvis_backend"]
