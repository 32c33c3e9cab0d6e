#!/usr/bin/env python
"""Evaluate detections with the official Open Images Challenge metric and EQLv2's frequency groups.

    tools/evaluate_openimages.py --annotations GT --hierarchy HIERARCHY.json --predictions PRED \
        [--image-labels LABELS.csv --image-sizes SIZES.csv --class-descriptions DESCRIPTIONS.csv] \
        [--class-counts COUNTS] --output-dir OUT

GT / PRED, by extension:
  GT .json    the COCO-like JSON of tools/convert_openimages.py (pixel boxes, isgroupof, verified
              image-level labels as pos_category_ids / neg_category_ids)
  GT .csv     the challenge's box file (normalised XMin, XMax, YMin, YMax, IsGroupOf); then
              --image-labels (ImageID,LabelName,Confidence) and --class-descriptions (MID,DisplayName
              without header) are required, and --image-sizes (ImageID,Width,Height) when PRED is
              a COCO results list
  PRED .json  a COCO results list: image_id, category_id (the GT's ids; for CSV GT the 1-based
              row of the class descriptions), bbox [x, y, w, h] in pixels, score
  PRED .csv   ImageID,LabelName,Score,XMin,XMax,YMin,YMax (read by column name, normalised)
COUNTS: a CSV with LabelName,instance_count, or the training JSON (its boxes are counted); with
it the classes are sorted by training instances into five equal groups, mAP0 (rarest) .. mAP4.

Writes OUT/per_class_ap.csv (LabelName,DisplayName,AP; nan for a class without ground truth) and
OUT/metrics.json (mAP and mAP0..mAP4 as fractions, as the official tool reports them), and prints
a table (in %). The rules are in docs/openimages.md.
"""
import argparse
import sys
import time

from efl.data.openimages import LabelHierarchy
from efl.data.openimages.files import read_hierarchy
from efl.data.openimages.ground_truth import (
    load_class_counts,
    load_ground_truth_csv,
    load_ground_truth_json,
    load_predictions,
)
from efl.data.openimages.report import evaluate_and_report, format_table


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--annotations", required=True, help="ground truth: COCO-like .json or the box .csv")
    parser.add_argument("--hierarchy", required=True, help="the label hierarchy JSON of the challenge")
    parser.add_argument("--predictions", required=True, help="COCO results .json or predictions .csv")
    parser.add_argument("--image-labels", help="verified image-level labels CSV (CSV ground truth)")
    parser.add_argument("--image-sizes", help="ImageID,Width,Height CSV (CSV ground truth with .json predictions)")
    parser.add_argument("--class-descriptions", help="MID,DisplayName CSV without header (CSV ground truth)")
    parser.add_argument("--class-counts",
                        help="training instance counts: LabelName,instance_count CSV or the training JSON")
    parser.add_argument("--output-dir", required=True, help="where per_class_ap.csv and metrics.json go")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    if args.annotations.endswith(".csv"):
        needed = {"--image-labels": args.image_labels, "--class-descriptions": args.class_descriptions}
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            sys.exit(f"evaluate_openimages: CSV ground truth needs {' and '.join(missing)}")
        dataset = load_ground_truth_csv(
            boxes_csv=args.annotations, image_labels_csv=args.image_labels,
            class_descriptions_csv=args.class_descriptions, image_sizes_csv=args.image_sizes,
        )
    else:
        dataset = load_ground_truth_json(args.annotations)
    hierarchy = LabelHierarchy(read_hierarchy(args.hierarchy), dataset.mids)
    detections = load_predictions(args.predictions, dataset)
    counts = load_class_counts(args.class_counts, dataset.mids) if args.class_counts else None
    result, metrics = evaluate_and_report(dataset, detections, hierarchy, counts, output_dir=args.output_dir)
    print(format_table(metrics, result))
    print(f"{len(detections.scores)} detections on {len(dataset.gt.image_ids)} images, "
          f"{time.perf_counter() - start:.1f} s; wrote per_class_ap.csv and metrics.json in {args.output_dir}")
    return metrics


if __name__ == "__main__":
    main()
