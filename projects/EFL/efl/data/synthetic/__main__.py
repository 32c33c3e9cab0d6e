"""Generate a synthetic long-tailed set in LVIS v1 format.

    python -m efl.data.synthetic --output-dir datasets/synthetic_lt --num-classes 64 --seed 1

Without --output-dir the set goes to the cache that the registered datasets use ($EFL_DATASETS or
~/.cache/efl/datasets). Register a generated directory with
`efl.data.register_synthetic_lt_dir(name, root)`.
"""
import argparse
import dataclasses
import json
import os
import sys

from .generator import PRESETS, ensure_generated, generate


def build_parser():
    defaults = PRESETS["default"]
    parser = argparse.ArgumentParser(
        prog="python -m efl.data.synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output-dir", help="new directory to write (default: the dataset cache)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="start from this preset")
    parser.add_argument("--num-classes", type=int, help=f"number of classes (default {defaults.num_classes})")
    parser.add_argument("--num-train-images", type=int, help=f"default {defaults.num_train_images}")
    parser.add_argument("--num-val-images", type=int, help=f"default {defaults.num_val_images}")
    parser.add_argument("--image-size", type=int, help=f"long side in pixels (default {defaults.image_size})")
    parser.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    overrides = {
        "num_classes": args.num_classes,
        "num_train_images": args.num_train_images,
        "num_val_images": args.num_val_images,
        "image_size": args.image_size,
        "seed": args.seed,
    }
    spec = dataclasses.replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None})
    if args.output_dir:
        if os.path.exists(args.output_dir):
            sys.exit(f"error: {args.output_dir} already exists; choose a new directory")
        stats = generate(spec, args.output_dir)
        root = args.output_dir
    else:
        root = ensure_generated(spec)
        with open(os.path.join(root, "generator.json")) as f:
            stats = json.load(f)
    print(json.dumps(stats, indent=1))
    print(f"written to {root}")


if __name__ == "__main__":
    main()
