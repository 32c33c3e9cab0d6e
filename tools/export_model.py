#!/usr/bin/env python
"""Export a trained detector (improved baseline or YOLOX-IP, any size, EFL or EQFL) to TorchScript
or ONNX, as Detectron2's tools/deploy/export_model.py does with tracing:

    .venv/bin/python tools/export_model.py --config-file configs/eqfl_yolox_ip_s_300e_rfs.py \\
        --format onnx --output export/ train.init_checkpoint=output/eqfl_yolox_ip_s_300e_rfs/model_final.pth

The graph takes one image and returns its detections after the model's own post-processing
(normalisation, padding, per-level top-k, box decoding, clipping, NMS, the per-image cap):

    image    (3, H, W) float32, the config's input format (model.input_format, 0-255), resized
             like the config's test loader (any H, W; YOLOX-IP: up to its test_pad_to)
    boxes    (R, 4) float32, XYXY in the pixels of that image
    scores   (R,) float32, descending
    classes  (R,) int64, contiguous class indices (metadata "category_ids" maps them to the dataset's)

Writes OUTPUT/model.onnx or OUTPUT/model.ts, with the metadata (input format, largest input size,
class names and category ids, config, weights) inside the file: an ONNX metadata_props entry or a
TorchScript extra file, both named efl_export.json. `efl.export.ExportedDetector(path)` runs either.
Details: docs/export.md.
"""
import argparse
import os
import sys

from predict import PredictError, HelpFormatter, category_id_mapping, load_model, test_metadata

FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.ts"}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a LazyConfig python file")
    parser.add_argument("--format", required=True, choices=sorted(FILE_NAMES), help="the exported graph's format")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for model.onnx / model.ts")
    parser.add_argument("--weights", help="checkpoint to export (default: the config's train.init_checkpoint)")
    parser.add_argument("--trace-size", type=int, nargs=2, metavar=("H", "W"),
                        help="size of the image the trace runs on (default: the largest 4:3 picture the config's "
                             "test resize gives, e.g. 800 1067 or 480 640); the graph takes other sizes too")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="key=value config overrides, e.g. train.init_checkpoint=model_final.pth")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except PredictError as e:
        sys.exit(f"error: {e}")


def run(args):
    import efl  # noqa: F401  (Detectron2 compatibility fixes, dataset registration)
    from efl.engine.checkpoint import CheckpointError
    from efl.engine.overrides import OverrideError
    from efl.export import export_onnx, export_torchscript, trace_input_size

    try:
        cfg, model, weights = load_model(args, device="cpu")
    except (CheckpointError, OverrideError) as e:
        raise PredictError(str(e)) from None
    size = tuple(args.trace_size) if args.trace_size else trace_input_size(cfg, model)
    pad_to = getattr(model, "test_pad_to", None)
    if pad_to and (size[0] > pad_to[0] or size[1] > pad_to[1]):
        raise PredictError(f"--trace-size {size[0]} {size[1]} exceeds the model's test_pad_to {tuple(pad_to)}")
    metadata = test_metadata(cfg)
    classes = list(metadata.get("thing_classes", []))
    info = {
        "config_file": args.config_file,
        "weights": weights,
        "thing_classes": classes,
        "category_ids": [category_id_mapping(metadata, len(classes))[k] for k in range(len(classes))],
    }
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, FILE_NAMES[args.format])
    export = export_onnx if args.format == "onnx" else export_torchscript
    try:
        export(model, path, size, info)
    except ValueError as e:
        raise PredictError(str(e)) from None
    print(f"{args.format} graph of {args.config_file} with {weights} (traced on {size[0]} x {size[1]}): {path}")


if __name__ == "__main__":
    main()
