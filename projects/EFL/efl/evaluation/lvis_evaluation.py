"""Detectron2's LVIS evaluator with a choice of evaluation library and the fixed-AP protocol."""
import contextlib
import itertools
import logging
from collections import defaultdict

from detectron2.evaluation import LVISEvaluator as _D2LVISEvaluator

from ..compat.evaluation import evaluate_predictions_on_lvis, lvis_module_as

__all__ = ["LVISEvaluator", "LVIS_BACKENDS", "lvis_backend"]

LVIS_BACKENDS = ("lvis", "hotcoco")


@contextlib.contextmanager
def lvis_backend(name):
    """Within the block, ``from lvis import LVIS, LVISEval, LVISResults`` resolves to ``name``.

    "lvis" is the official lvis-api (minutes and tens of GB on the full LVIS v1 val set);
    "hotcoco" is a Rust re-implementation of the same federated protocol (seconds, under 2 GB).
    Unlike ``hotcoco.init_as_lvis()``, the swap is undone when the block ends, so the choice
    stays local to one evaluator. Either library's own summary print is left out: Detectron2 logs
    the same metrics as a table right after it.
    """
    if name == "lvis":
        import lvis as module
    elif name == "hotcoco":
        import hotcoco as module
    else:
        raise ValueError(f"unknown LVIS evaluation backend {name!r}; choose one of {LVIS_BACKENDS}")
    # the swap also keeps Detectron2 from printing the library's summary before its own table
    with lvis_module_as(module), _absent_metrics_named_in_tables():
        yield


class _AbsentMetricsFilter(logging.Filter):
    """Detectron2 reports a metric the set cannot measure (a frequency group or a size range
    without ground truth) as -100; its table of LVIS AP says "absent" there instead
    (final_results.json stores null)."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("Evaluation results for"):
            record.msg = record.msg.replace("-100.000", "  absent")  # the same width
        return True


@contextlib.contextmanager
def _absent_metrics_named_in_tables():
    logger = logging.getLogger(_D2LVISEvaluator.__module__)  # where its table is logged
    absent_filter = _AbsentMetricsFilter()
    logger.addFilter(absent_filter)
    try:
        yield
    finally:
        logger.removeFilter(absent_filter)


class LVISEvaluator(_D2LVISEvaluator):
    """:class:`detectron2.evaluation.LVISEvaluator` (standard LVIS AP, at most
    ``max_dets_per_image`` = 300 detections per image, APr/APc/APf) with a selectable backend,
    and optionally the fixed-AP protocol beside it.

    Both backends return the same numbers (tests/evaluation checks this against the official API).

    APfixed (Dave et al., "Evaluating Large-Vocabulary Object Detectors: The Devil is in the
    Details", 2021): no per-image cap; each class keeps its ``fixed_ap_dets_per_class`` (10,000)
    highest-scoring detections over the whole dataset, so a class's AP no longer depends on how
    many detections of *other* classes an image holds. Reported as "APfixed", "APrfixed",
    "APcfixed", "APffixed". The model must output enough detections per image for it to mean
    anything: raise ``model.max_detections_per_image`` (and ``model.test_topk_candidates``).
    """

    def __init__(self, dataset_name, tasks=None, distributed=True, output_dir=None, *,
                 max_dets_per_image=None, backend="lvis", fixed_ap_dets_per_class=None):
        """
        Args:
            dataset_name, tasks, distributed, output_dir, max_dets_per_image: as in Detectron2.
            backend: "lvis" (official lvis-api) or "hotcoco" (fast); see :func:`lvis_backend`.
            fixed_ap_dets_per_class: also compute APfixed keeping this many detections per class
                (10000 in the paper); None: standard AP only.
        """
        if fixed_ap_dets_per_class is not None and fixed_ap_dets_per_class < 1:
            raise ValueError(f"fixed_ap_dets_per_class must be >= 1, got {fixed_ap_dets_per_class}")
        self._backend = backend
        self._fixed_ap_dets_per_class = fixed_ap_dets_per_class
        with lvis_backend(backend):
            super().__init__(dataset_name, tasks, distributed, output_dir,
                             max_dets_per_image=max_dets_per_image)

    def _eval_predictions(self, predictions):
        with lvis_backend(self._backend):
            # before Detectron2's pass, which rewrites the category ids of the predictions in place
            fixed = self._fixed_ap(predictions) if self._fixed_ap_dets_per_class else {}
            super()._eval_predictions(predictions)
            if fixed and "bbox" in self._results:
                self._results["bbox"].update(fixed)

    def _fixed_ap(self, predictions):
        """{"APfixed", "APrfixed", "APcfixed", "APffixed"} of the box predictions."""
        by_class = defaultdict(list)
        for result in itertools.chain(*[x["instances"] for x in predictions]):
            if "bbox" in result:
                by_class[result["category_id"]].append(result)
        kept = []
        for results in by_class.values():
            results = sorted(results, key=lambda r: r["score"], reverse=True)
            kept += [dict(r) for r in results[: self._fixed_ap_dets_per_class]]
        if hasattr(self._metadata, "thing_dataset_id_to_contiguous_id"):
            to_file_id = {v: k for k, v in self._metadata.thing_dataset_id_to_contiguous_id.items()}
        else:
            to_file_id = {c: c + 1 for c in by_class}  # LVIS: contiguous id + 1
        for result in kept:
            result["category_id"] = to_file_id[result["category_id"]]
        if not self._do_evaluation or not kept:
            return {}
        self._logger.info(f"Evaluating APfixed: at most {self._fixed_ap_dets_per_class} detections per "
                          "class, no per-image cap")
        res = evaluate_predictions_on_lvis(self._lvis_api, kept, "bbox", max_dets_per_image=-1,
                                            class_names=self._metadata.get("thing_classes"))
        return {f"{k}fixed": res[k] for k in ("AP", "APr", "APc", "APf") if k in res}
