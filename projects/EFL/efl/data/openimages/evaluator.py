"""Open Images Challenge evaluation inside Detectron2 (`tools/train_net.py --eval-only`)."""
import itertools
import logging
import os

import numpy as np

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from .files import read_hierarchy
from .ground_truth import load_class_counts, load_ground_truth_json
from .hierarchy import LabelHierarchy
from .metric import OIDDetections
from .report import evaluate_and_report, format_table

__all__ = ["OpenImagesEvaluator"]

logger = logging.getLogger(__name__)


class OpenImagesEvaluator(DatasetEvaluator):
    """The official Open Images Challenge detection metric (docs/openimages.md) with EQLv2's
    frequency groups.

    Ground truth comes from the dataset's JSON (`metadata.json_file`), the hierarchy from
    `metadata.hierarchy` or `metadata.hierarchy_file`, training instance counts from
    `metadata.class_instance_count` or `metadata.class_counts_file` (without them only mAP is
    reported). Returns `{"bbox": {"mAP": ..., "mAP0": ..., ..., "mAP4": ...}}` in percent, as
    Detectron2's evaluators do; `output_dir` gets `per_class_ap.csv` and `metrics.json` (fractions,
    as the official tool writes them).
    """

    def __init__(self, dataset_name, *, distributed=True, output_dir=None, num_groups=5):
        """
        Args:
            dataset_name: a dataset registered with Open Images metadata (efl.data.openimages.datasets).
            distributed: gather the predictions of every process and evaluate on the main one.
            output_dir: where to write per_class_ap.csv and metrics.json (None: nowhere).
            num_groups: number of frequency groups (EQLv2: 5).
        """
        self._metadata = MetadataCatalog.get(dataset_name)
        if not hasattr(self._metadata, "json_file"):
            raise ValueError(f"{dataset_name}: metadata has no 'json_file'; register it with efl.data.openimages")
        self._dataset_name = dataset_name
        self._distributed = distributed
        self._output_dir = output_dir
        self._num_groups = num_groups
        self._predictions = []

    def reset(self):
        self._predictions = []

    def process(self, inputs, outputs):
        for inp, out in zip(inputs, outputs):
            instances = out["instances"].to("cpu")
            self._predictions.append({
                "image_id": inp["image_id"],
                # boxes are in the original image's pixels (the detector rescales them)
                "boxes": instances.pred_boxes.tensor.numpy().astype(np.float32),  # (R, 4) x0 y0 x1 y1
                "scores": instances.scores.numpy().astype(np.float32),  # (R,)
                "classes": instances.pred_classes.numpy().astype(np.int32),  # (R,)
            })

    def _hierarchy(self, mids):
        meta = self._metadata.as_dict()
        if "hierarchy" in meta:
            return LabelHierarchy(meta["hierarchy"], mids)
        path = meta.get("hierarchy_file")
        if path is None or not os.path.isfile(path):
            raise FileNotFoundError(
                f"{self._dataset_name}: the label hierarchy ({path}) is needed for the official metric"
            )
        return LabelHierarchy(read_hierarchy(path), mids)

    def _class_counts(self, mids):
        meta = self._metadata.as_dict()
        if "class_instance_count" in meta:
            return np.asarray(meta["class_instance_count"])
        path = meta.get("class_counts_file")
        if path and os.path.isfile(path):
            return load_class_counts(path, mids)
        logger.warning("%s: no training instance counts (%s): mAP0-mAP4 are not reported", self._dataset_name, path)
        return None

    def evaluate(self):
        predictions = self._predictions
        if self._distributed:
            comm.synchronize()
            predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
            if not comm.is_main_process():
                return {}
        dataset = load_ground_truth_json(self._metadata.json_file)
        unknown = [p["image_id"] for p in predictions if p["image_id"] not in dataset.image_index]
        if unknown:
            raise KeyError(f"{self._dataset_name}: image {unknown[0]!r} is not in {self._metadata.json_file}")
        detections = OIDDetections.concatenate(
            OIDDetections.from_lists(
                np.full(len(p["scores"]), dataset.image_index[p["image_id"]]), p["classes"], p["boxes"], p["scores"]
            )
            for p in predictions
        )
        result, metrics = evaluate_and_report(
            dataset, detections, self._hierarchy(dataset.mids), self._class_counts(dataset.mids),
            num_groups=self._num_groups, output_dir=self._output_dir,
        )
        logger.info("Open Images Challenge metric on %s:\n%s", self._dataset_name, format_table(metrics, result))
        return {"bbox": {k: 100.0 * v for k, v in metrics.items()}}
