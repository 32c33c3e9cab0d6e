"""The Open Images metric's numbers: mAP and EQLv2's frequency groups, the per-class report
files and the console table; `evaluate_and_report` runs them all, for the evaluator and
tools/evaluate_openimages.py alike."""
import csv
import json
import math
import os
from typing import Optional

import numpy as np

from .ground_truth import OIDDataset
from .hierarchy import LabelHierarchy
from .metric import OIDDetections, OIDResult, evaluate_oid_challenge, frequency_groups, group_mean_ap

__all__ = ["evaluate_and_report", "format_table", "summarize", "write_report"]


def evaluate_and_report(dataset: OIDDataset, detections: OIDDetections, hierarchy: LabelHierarchy,
                        class_counts: Optional[np.ndarray] = None, *, num_groups: int = 5, output_dir=None):
    """
    The official challenge metric of `detections` on `dataset`.

    Args:
        dataset: the ground truth with its classes.
        detections: in the frame of `dataset` (see `ground_truth.load_predictions`).
        hierarchy: the label hierarchy over `dataset.mids`.
        class_counts: training instances per class; with them, EQLv2's groups mAP0.. are added.
        num_groups: number of frequency groups (EQLv2: 5).
        output_dir: where to write per_class_ap.csv and metrics.json (None: nowhere).

    Returns:
        (OIDResult, dict): per-class APs, and {"mAP": ..., "mAP0": ...} as fractions.
    """
    result = evaluate_oid_challenge(dataset.gt, detections, num_classes=len(dataset.mids), hierarchy=hierarchy)
    metrics = summarize(result, class_counts, num_groups)
    if output_dir:
        write_report(output_dir, result, dataset.mids, dataset.names, metrics)
    return result, metrics


def summarize(result: OIDResult, class_counts: Optional[np.ndarray] = None, num_groups: int = 5) -> dict:
    """{"mAP": ..., and with counts "mAP0" .. "mAP<num_groups-1>"} as fractions."""
    metrics = {"mAP": result.mean_ap}
    if class_counts is not None:
        if len(class_counts) != len(result.ap):
            raise ValueError(f"{len(class_counts)} class counts for {len(result.ap)} classes")
        groups = frequency_groups(class_counts, num_groups)
        for g, value in enumerate(group_mean_ap(result.ap, groups)):
            metrics[f"mAP{g}"] = value
    return metrics


def write_report(output_dir, result: OIDResult, mids, names, metrics):
    """`per_class_ap.csv` (LabelName,DisplayName,AP; `nan` without ground truth) and
    `metrics.json` in `output_dir`."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "per_class_ap.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["LabelName", "DisplayName", "AP"])
        for mid, name, ap in zip(mids, names, result.ap.tolist()):
            writer.writerow([mid, name, "nan" if math.isnan(ap) else repr(ap)])
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump({k: (None if math.isnan(v) else v) for k, v in metrics.items()}, f, indent=2)


def format_table(metrics, result: OIDResult) -> str:
    """A two-row markdown table of the metrics (in %) and the class count."""
    keys = list(metrics)
    evaluated = int((~np.isnan(result.ap)).sum())
    head = "| " + " | ".join(keys) + " | classes with ground truth |"
    rule = "|" + "---|" * (len(keys) + 1)
    row = "| " + " | ".join(f"{100 * metrics[k]:.2f}" for k in keys) + f" | {evaluated} / {len(result.ap)} |"
    return "\n".join([head, rule, row])
