#!/usr/bin/env python
"""Convert a released checkpoint of the reference (EOD / United-Perception) into a Detectron2
checkpoint of this project's matching model, and say which config to use it with.

    python tools/convert_eod_checkpoint.py efl_improved_baseline_r50.pth output/efl_r50_eod.pth
    tools/train_net.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py --eval-only \\
        train.init_checkpoint=output/efl_r50_eod.pth \\
        model.eod_inference=improved_baseline dataloader.test.mapper.opencv_resize=True

``--weights ema`` / ``model`` chooses the EMA or the trained weights of a file that has both
(default: EMA when present, as the reference evaluates). The output is checked key for key and
shape for shape against the model the matching config builds. Mapping: docs/eod_checkpoints.md.
"""
import argparse
import os
import sys

import efl  # noqa: F401  (compatibility fixes; must precede detectron2)

import torch

from efl.checkpoint_conversion import (
    EODCheckpointError,
    check_against_model,
    convert_eod_checkpoint,
    load_eod_file,
    matching_model,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the reference's .pth file")
    parser.add_argument("output", help="where to write the Detectron2 checkpoint (.pth)")
    parser.add_argument(
        "--weights", choices=("ema", "model"), default=None,
        help="EMA or trained weights (default: EMA when the file has them)",
    )
    return parser.parse_args(argv)


def loss_from_file_name(path):
    """"eqfl" / "efl" for the reference's released names (eqfl_yolox_small.pth, ...), else None:
    the EFL and EQFL YOLOX-IP configs build the same network, the weights cannot tell them apart."""
    name = os.path.basename(path).lower()
    for loss in ("eqfl", "efl"):
        if name.startswith(loss):
            return loss
    return None


def main(argv=None):
    args = parse_args(argv)
    loss = loss_from_file_name(args.input)
    try:
        conversion = convert_eod_checkpoint(load_eod_file(args.input), weights=args.weights,
                                            loss=loss)
        info = conversion.info
        model = matching_model(info, REPO_ROOT)
        check_against_model(conversion.state_dict, info, model.state_dict())
    except (EODCheckpointError, FileNotFoundError) as e:
        sys.exit(f"{args.input}: {e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    torch.save(conversion.detectron2_checkpoint(), args.output)

    overrides = "".join(f" {o}" for o in info.overrides)
    print(f"found: {info.describe()} (weights: {conversion.source})")
    print(f"family: {info.family}")
    print(f"size: {info.size}")
    print(f"classes: {info.num_classes}")
    print(f"config: {info.config}{overrides}")
    if info.family == "yolox_ip" and loss is None:
        other = info.config.replace("configs/efl_", "configs/eqfl_")
        print(f"  (the file name does not say EFL or EQFL; for an EQFL model use {other}, "
              "which builds the same network)")
    inference = "".join(f" {o}" for o in info.inference_overrides)
    print(f"wrote {args.output} ({len(conversion.state_dict)} tensors). Evaluate it as the "
          "reference does (its test resize and post-processing) with:")
    print(f"  tools/train_net.py --config-file {info.config} --eval-only "
          f"train.init_checkpoint={args.output}{overrides}{inference}")


if __name__ == "__main__":
    main()
