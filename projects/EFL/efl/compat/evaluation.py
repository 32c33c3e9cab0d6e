"""Reaches into detectron2 0.6's LVIS evaluation."""
import contextlib
import io
import sys
import types

from detectron2.evaluation.lvis_evaluation import _evaluate_predictions_on_lvis

__all__ = ["evaluate_predictions_on_lvis", "lvis_module_as"]


def evaluate_predictions_on_lvis(lvis_gt, results, iou_type, *, max_dets_per_image, class_names):
    """Detectron2's LVIS evaluation of a results list (AP, APr, APc, APf, ... in percent, logged as
    its evaluator logs them). detectron2 0.6 keeps it private (``_evaluate_predictions_on_lvis``);
    the fixed-AP protocol calls it with its own results and ``max_dets_per_image=-1``."""
    return _evaluate_predictions_on_lvis(lvis_gt, results, iou_type, max_dets_per_image=max_dets_per_image,
                                         class_names=class_names)


def _without_summary_print(lvis_eval_class):
    """``lvis_eval_class`` made quiet: detectron2 0.6 calls ``run()`` and ``print_results()`` and
    then logs the same metrics as a table, so every evaluation listed its AP two or three times
    (as fractions with -1.000 for an absent group, then in percent). The lvis-api prints in
    ``print_results``; hotcoco's ``LVISEval`` returns its Rust ``COCOeval``, whose ``run()``
    prints the summary as well and whose methods a subclass cannot replace: a wrapper, then."""

    class QuietLVISEval:
        def __init__(self, *args, **kwargs):
            self._eval = lvis_eval_class(*args, **kwargs)

        def run(self):
            with contextlib.redirect_stdout(io.StringIO()):
                self._eval.run()

        def print_results(self):
            pass

        def __getattr__(self, name):  # get_results, results, params, ...
            return getattr(self._eval, name)

    QuietLVISEval.__name__ = QuietLVISEval.__qualname__ = lvis_eval_class.__name__
    QuietLVISEval.__module__, QuietLVISEval.__doc__ = lvis_eval_class.__module__, lvis_eval_class.__doc__
    return QuietLVISEval


@contextlib.contextmanager
def lvis_module_as(module):
    """Within the block, ``import lvis`` gives ``module`` (an object with ``LVIS``, ``LVISEval``,
    ``LVISResults``); the previous ``lvis`` is restored when the block ends.

    detectron2 0.6's ``LVISEvaluator`` has no argument that selects the evaluation library: it runs
    ``from lvis import ...`` inside its methods, so swapping ``sys.modules["lvis"]`` around those
    calls is the only way to give it another one.
    """
    shim = types.ModuleType("lvis")
    shim.LVIS, shim.LVISResults = module.LVIS, module.LVISResults
    shim.LVISEval = _without_summary_print(module.LVISEval)
    saved = sys.modules.get("lvis")
    sys.modules["lvis"] = shim
    try:
        yield
    finally:
        if saved is None:
            sys.modules.pop("lvis", None)
        else:
            sys.modules["lvis"] = saved
