"""Generate a synthetic long-tailed set in LVIS v1 format.

    python -m efl.data.synthetic --output-dir datasets/synthetic_lt --num-classes 64 --seed 1

Without --output-dir the set goes to the cache that the registered datasets use ($EFL_DATASETS or
~/.cache/efl/datasets). Register a generated directory with
`efl.data.register_synthetic_lt_dir(name, root)`. Impossible sizes are argument errors; the set is
written into a temporary folder next to --output-dir and renamed into place when complete, so a
failed run leaves nothing behind.
"""
import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile

from .classes import design_val_image_counts
from .generator import PRESETS, ensure_generated, generate

# Below this the objects (12-45% of the short side) are a few pixels and hide each other.
MIN_IMAGE_SIZE = 64


def _at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def build_parser():
    defaults = PRESETS["default"]
    parser = argparse.ArgumentParser(
        prog="python -m efl.data.synthetic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output-dir", help="new directory to write (default: the dataset cache)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="start from this preset")
    parser.add_argument("--num-classes", type=_at_least(1), help=f"number of classes (default {defaults.num_classes})")
    parser.add_argument("--num-train-images", type=_at_least(1), help=f"default {defaults.num_train_images}")
    parser.add_argument("--num-val-images", type=_at_least(1), help=f"default {defaults.num_val_images}")
    parser.add_argument("--image-size", type=_at_least(MIN_IMAGE_SIZE),
                        help=f"long side in pixels (default {defaults.image_size})")
    parser.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    return parser


def spec_problem(spec):
    """``(argument, message)`` when ``spec`` cannot be generated, else None. The conditions are
    the generator's: every image holds at least one and at most ``max_classes_per_image`` classes,
    so the designed class occurrences of each split must lie between those bounds."""
    try:
        _, train_counts, _ = spec.class_design()
    except ValueError as e:
        return "--num-classes", str(e)
    val_counts = design_val_image_counts(train_counts, spec.num_train_images, spec.num_val_images,
                                         min_count=spec.min_val_images_per_class)
    most = spec.max_classes_per_image
    for argument, split, counts, num_images in (
        ("--num-train-images", "training", train_counts, spec.num_train_images),
        ("--num-val-images", "validation", val_counts, spec.num_val_images),
    ):
        total = int(counts.sum())
        if total < num_images:
            return argument, (
                f"{num_images} {split} images need at least {num_images} class occurrences (one object "
                f"each), but {spec.num_classes} class{'es' if spec.num_classes != 1 else ''} give {total}: use fewer "
                "images or more classes "
                "(--num-classes)")
        if total > num_images * most:
            return argument, (
                f"{total} class occurrences do not fit in {num_images} {split} images of at most {most} "
                "classes each: use more images")
    return None


def generate_atomically(spec, output_dir):
    """``generate`` into a temporary sibling of ``output_dir``, renamed into place when complete."""
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output_dir))}.tmp-", dir=parent)
    try:
        stats = generate(spec, os.path.join(tmp, "set"))
        os.rename(os.path.join(tmp, "set"), output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        "num_classes": args.num_classes,
        "num_train_images": args.num_train_images,
        "num_val_images": args.num_val_images,
        "image_size": args.image_size,
        "seed": args.seed,
    }
    spec = dataclasses.replace(PRESETS[args.preset], **{k: v for k, v in overrides.items() if v is not None})
    problem = spec_problem(spec)
    if problem:
        parser.error(f"argument {problem[0]}: {problem[1]}")
    try:
        if args.output_dir:
            if os.path.exists(args.output_dir):
                parser.error(f"argument --output-dir: {args.output_dir} already exists; choose a new directory")
            stats = generate_atomically(spec, args.output_dir)
            root = args.output_dir
        else:
            root = ensure_generated(spec)
            with open(os.path.join(root, "generator.json")) as f:
                stats = json.load(f)
    except (ValueError, RuntimeError) as e:
        # What the checks above cannot foresee (e.g. an object hidden by occlusion): nothing was
        # written, so the same command can be rerun with other arguments.
        sys.exit(f"error: could not generate this set ({e}); nothing was written")
    print(json.dumps(stats, indent=1))
    print(f"written to {root}")


if __name__ == "__main__":
    main()
