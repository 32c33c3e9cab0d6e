#!/usr/bin/env python
"""Convert the Open Images Challenge CSVs to the COCO-like JSON this project trains and evaluates on.

    tools/convert_openimages.py --boxes challenge-2019-train-detection-bbox.csv \
        --image-labels challenge-2019-train-detection-human-imagelabels.csv \
        --class-descriptions challenge-2019-classes-description-500.csv \
        --hierarchy challenge-2019-label500-hierarchy.json \
        --image-sizes train_sizes.csv  (or --image-dir $EFL_OID_ROOT/train) \
        --output $EFL_OID_ROOT/annotations/openimages_challenge_2019_train_bbox.json \
        --class-counts-output $EFL_OID_ROOT/annotations/openimages_challenge_2019_train_class_counts.csv

The layout is that of EQLv2's tools/openimages2coco (images with width, height, pos_category_ids,
neg_category_ids; annotations with pixel bbox [x, y, w, h], isgroupof, isoccluded, istruncated,
isdepiction, isinside; categories with freebase_id, here also instance_count), WITHOUT that tool's
two bugs: it drops the first image-level-label row and never writes the attribute flags (so its
files cannot tell group-of boxes apart). Boxes are not rounded, so the JSON evaluates to the same
numbers as the CSVs. Images are those named in the box or image-level-label file; sizes come from
--image-sizes (ImageID,Width,Height) or, for images not listed there, from --image-dir/<ImageID>.jpg.
Malformed rows are errors naming the file and line. See docs/openimages.md.
"""
import argparse
import json
import os

from efl.data.openimages import convert_challenge_files, write_class_counts_csv


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--boxes", required=True, help="box CSV (normalised XMin, XMax, YMin, YMax, IsGroupOf, flags)")
    parser.add_argument("--image-labels", required=True, help="human-verified image-level labels CSV")
    parser.add_argument("--class-descriptions", required=True, help="MID,DisplayName CSV without header")
    parser.add_argument("--hierarchy", help="label hierarchy JSON, checked against the classes")
    parser.add_argument("--image-sizes", help="CSV with ImageID, Width, Height")
    parser.add_argument("--image-dir", help="folder with <ImageID>.jpg, for sizes not in --image-sizes")
    parser.add_argument("--output", required=True, help="the JSON to write")
    parser.add_argument("--class-counts-output", help="also write LabelName,DisplayName,instance_count here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.image_sizes is None and args.image_dir is None:
        raise SystemExit("convert_openimages: give --image-sizes or --image-dir (the sizes give pixel boxes)")
    dataset = convert_challenge_files(
        boxes_csv=args.boxes, image_labels_csv=args.image_labels, class_descriptions_csv=args.class_descriptions,
        hierarchy_json=args.hierarchy, image_sizes_csv=args.image_sizes, image_dir=args.image_dir,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(dataset, f)
    if args.class_counts_output:
        write_class_counts_csv(args.class_counts_output, dataset)
    print(f"{args.output}: {len(dataset['images'])} images, {len(dataset['annotations'])} boxes, "
          f"{len(dataset['categories'])} classes")


if __name__ == "__main__":
    main()
