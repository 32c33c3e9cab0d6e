"""Detectron2's LVIS evaluator with a choice of evaluation library."""
import contextlib
import sys
import types

from detectron2.evaluation import LVISEvaluator as _D2LVISEvaluator

__all__ = ["LVISEvaluator", "LVIS_BACKENDS", "lvis_backend"]

LVIS_BACKENDS = ("lvis", "hotcoco")


@contextlib.contextmanager
def lvis_backend(name):
    """Within the block, ``from lvis import LVIS, LVISEval, LVISResults`` resolves to ``name``.

    "lvis" is the official lvis-api (minutes and tens of GB on the full LVIS v1 val set);
    "hotcoco" is a Rust re-implementation of the same federated protocol (seconds, under 2 GB).
    Unlike ``hotcoco.init_as_lvis()``, the swap is undone when the block ends, so the choice
    stays local to one evaluator.
    """
    if name == "lvis":
        yield
        return
    if name != "hotcoco":
        raise ValueError(f"unknown LVIS evaluation backend {name!r}; choose one of {LVIS_BACKENDS}")
    import hotcoco

    shim = types.ModuleType("lvis")
    shim.LVIS, shim.LVISEval, shim.LVISResults = hotcoco.LVIS, hotcoco.LVISEval, hotcoco.LVISResults
    saved = sys.modules.get("lvis")
    sys.modules["lvis"] = shim
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("lvis", None)
        else:
            sys.modules["lvis"] = saved


class LVISEvaluator(_D2LVISEvaluator):
    """:class:`detectron2.evaluation.LVISEvaluator` (standard LVIS AP, at most
    ``max_dets_per_image`` = 300 detections per image, APr/APc/APf) with a selectable backend.

    Both backends return the same numbers (tests/evaluation checks this against the official API).
    """

    def __init__(self, dataset_name, tasks=None, distributed=True, output_dir=None, *,
                 max_dets_per_image=None, backend="lvis"):
        """
        Args:
            dataset_name, tasks, distributed, output_dir, max_dets_per_image: as in Detectron2.
            backend: "lvis" (official lvis-api) or "hotcoco" (fast); see :func:`lvis_backend`.
        """
        self._backend = backend
        with lvis_backend(backend):
            super().__init__(dataset_name, tasks, distributed, output_dir,
                             max_dets_per_image=max_dets_per_image)

    def _eval_predictions(self, predictions):
        with lvis_backend(self._backend):
            return super()._eval_predictions(predictions)
