#!/usr/bin/env python
"""Detect objects in your own images with a trained model, as Detectron2's demo/demo.py does:
a picture with the detections per image, and one COCO-style results json.

    .venv/bin/python tools/predict.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py \\
        --input 'photos/*.jpg' --output predictions/ \\
        train.init_checkpoint=output/efl_improved_baseline_r50_2x_rfs/model_final.pth

--input is a folder (its images), a glob pattern or one file. The weights come from --weights or
the `train.init_checkpoint=` override and must fit the config's model exactly. Class names come
from the metadata of the config's test dataset (`dataloader.test.dataset.names`), whose category
ids the json uses (LVIS: 1..1203; COCO-format datasets: the file's ids). Images are resized like
the config's test loader. Writes:

    OUTPUT/<image name>             the image with detections scoring >= --confidence-threshold
    OUTPUT/results.json             [{"file_name", "image_id", "category_id", "bbox": [x, y, w, h],
                                      "score"}, ...] for the same detections, in image pixels
"""
import argparse
import glob
import json
import os
import sys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class PredictError(Exception):
    """A user error, reported as one line without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type("F", (argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter), {}),
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a LazyConfig python file")
    parser.add_argument("--input", required=True, help="a folder of images, a glob pattern ('photos/*.jpg') or a file")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the pictures and results.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="detections scoring below it are neither drawn nor written")
    parser.add_argument("--weights", help="checkpoint to load (default: the config's train.init_checkpoint)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="key=value config overrides, e.g. train.init_checkpoint=model_final.pth train.device=cpu")
    return parser


def list_images(pattern):
    """The image files of a folder, a glob pattern or a single file, sorted."""
    if os.path.isdir(pattern):
        files = [os.path.join(pattern, f) for f in os.listdir(pattern)]
        files = [f for f in files if os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS)]
        where = f"folder {pattern} holds no image file ({', '.join(IMAGE_EXTENSIONS)})"
    else:
        files = [f for f in glob.glob(pattern) if os.path.isfile(f)]
        where = f"no file matches --input {pattern!r}"
    if not files:
        raise PredictError(where)
    return sorted(files)


def output_names(files):
    """A distinct picture name per input (inputs from different folders may share a name)."""
    names, seen = [], set()
    for index, path in enumerate(files):
        name = os.path.basename(path)
        if name in seen:
            stem, ext = os.path.splitext(name)
            name = f"{stem}_{index}{ext}"
        seen.add(name)
        names.append(name)
    return names


def test_metadata(cfg):
    from detectron2.data import MetadataCatalog

    names = cfg.dataloader.test.dataset.names
    name = names if isinstance(names, str) else names[0]
    return MetadataCatalog.get(name)


def category_id_mapping(metadata, num_classes):
    """Contiguous class index -> the dataset's category id: the metadata's own map when it has
    one, LVIS's id = index + 1 for LVIS datasets, else the index itself."""
    mapping = metadata.get("thing_dataset_id_to_contiguous_id", None)
    if mapping:
        return {contiguous: dataset_id for dataset_id, contiguous in mapping.items()}
    offset = 1 if metadata.get("evaluator_type", None) == "lvis" else 0
    return {k: k + offset for k in range(num_classes)}


class Predictor:
    """The config's model with its test-time resize, on one image at a time (like Detectron2's
    DefaultPredictor, for LazyConfigs)."""

    def __init__(self, cfg, model):
        import detectron2.data.transforms as T
        from detectron2.config import instantiate

        self.model = model
        mapper = cfg.dataloader.test.mapper
        self.augmentations = T.AugmentationList(instantiate(mapper.augmentations))
        self.input_format = mapper.image_format

    def read(self, path):
        """The image as RGB uint8 (H, W, 3), and in the model's format."""
        from detectron2.data.detection_utils import convert_image_to_rgb, read_image

        try:
            image = read_image(path, format=self.input_format)
        except Exception as e:  # PIL raises several types for unreadable files
            raise PredictError(f"cannot read image {path}: {e}") from None
        return convert_image_to_rgb(image, self.input_format), image

    def __call__(self, image):
        import detectron2.data.transforms as T
        import torch

        height, width = image.shape[:2]
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        tensor = torch.as_tensor(aug_input.image.astype("float32").transpose(2, 0, 1))
        with torch.no_grad():
            (output,) = self.model([{"image": tensor, "height": height, "width": width}])
        return output["instances"].to("cpu")


def coco_results(instances, file_name, image_id, id_map):
    from detectron2.structures import BoxMode

    boxes = BoxMode.convert(instances.pred_boxes.tensor.clone(), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    return [
        {"file_name": file_name, "image_id": image_id, "category_id": id_map[int(c)],
         "bbox": [round(float(v), 3) for v in box], "score": round(float(s), 5)}
        for box, s, c in zip(boxes.tolist(), instances.scores.tolist(), instances.pred_classes.tolist())
    ]


def load_model(args):
    """``(cfg, model, weights)``: the config with the overrides, its model in eval mode with the
    weights (which must fit it exactly), on ``train.device`` (the CPU without CUDA)."""
    import torch
    from detectron2.config import LazyConfig, instantiate

    from efl.engine import AtomicDetectionCheckpointer
    from efl.engine.overrides import apply_overrides

    if not os.path.isfile(args.config_file):
        raise PredictError(f"--config-file {args.config_file} does not exist")
    cfg = apply_overrides(LazyConfig.load(args.config_file), list(args.opts))
    weights = args.weights or cfg.train.get("init_checkpoint", "")
    if not weights:
        raise PredictError("no weights: pass --weights PATH or the override train.init_checkpoint=PATH")
    if not os.path.isfile(weights):
        raise PredictError(f"weights {weights} do not exist")
    model = instantiate(cfg.model).eval()
    AtomicDetectionCheckpointer(model, load_mode="strict").load(weights)
    device = str(cfg.train.get("device", "cpu"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"
    return cfg, model.to(device), weights


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args)
    except PredictError as e:
        sys.exit(f"error: {e}")


def run(args):
    import efl  # noqa: F401  (Detectron2 compatibility fixes, dataset registration)
    from efl.engine.checkpoint import CheckpointError
    from efl.engine.overrides import OverrideError

    files = list_images(args.input)
    try:
        cfg, model, weights = load_model(args)
    except (CheckpointError, OverrideError) as e:
        raise PredictError(str(e)) from None
    from detectron2.utils.visualizer import Visualizer

    metadata = test_metadata(cfg)
    id_map = category_id_mapping(metadata, len(metadata.thing_classes))
    predictor = Predictor(cfg, model)
    os.makedirs(args.output, exist_ok=True)
    results = []
    for image_id, (path, name) in enumerate(zip(files, output_names(files))):
        rgb, image = predictor.read(path)
        instances = predictor(image)
        instances = instances[instances.scores >= args.confidence_threshold]
        results += coco_results(instances, path, image_id, id_map)
        picture = Visualizer(rgb, metadata).draw_instance_predictions(instances).get_image()
        save_picture(picture, os.path.join(args.output, name))
        print(f"{path}: {len(instances)} detections")
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(results, f)
    print(f"{len(files)} images, {len(results)} detections (score >= {args.confidence_threshold}) with "
          f"{weights}; pictures and results.json in {args.output}")


def save_picture(rgb, path):
    from PIL import Image

    Image.fromarray(rgb).save(path)


if __name__ == "__main__":
    main()
