"""The Open Images metric's numbers: mAP and EQLv2's frequency groups, the per-class report
files and the console table."""
import csv
import json
import math
import os
from typing import Optional

import numpy as np

from .metric import OIDResult, frequency_groups, group_mean_ap

__all__ = ["format_table", "summarize", "write_report"]


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
