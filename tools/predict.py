#!/usr/bin/env python
"""Detect objects in your own images or video with a trained model, as Detectron2's demo/demo.py
does: a picture with the detections per image (an annotated video for a video), and one COCO-style
results json.

    .venv/bin/python tools/predict.py --config-file configs/efl_improved_baseline_r50_2x_rfs.py \\
        --input 'photos/*.jpg' --output predictions/ \\
        train.init_checkpoint=output/efl_improved_baseline_r50_2x_rfs/model_final.pth

--input is a folder (its images), a glob pattern, one image, or one video file (.mp4, .avi, .mov,
.mkv, .webm, .m4v; read with OpenCV, frame by frame). An image that cannot be read is skipped and
named; the others are still predicted and results.json is always written. The weights come from --weights or
the `train.init_checkpoint=` override and must fit the config's model exactly. Class names come
from the metadata of the config's test dataset (`dataloader.test.dataset.names`), whose category
ids the json uses (LVIS: 1..1203; COCO-format datasets: the file's ids). Images are resized like
the config's test loader. Writes:

    OUTPUT/<image name>             the image with detections scoring >= --confidence-threshold
    OUTPUT/results.json             [{"file_name", "image_id", "category_id", "bbox": [x, y, w, h],
                                      "score"}, ...] for the same detections, in image pixels
    OUTPUT/<video name>             for a video: the annotated video (same codec family: mp4v for
                                    .mp4/.mov/.m4v, MJPG for .avi, ...), same size and frame rate
    OUTPUT/results.json             for a video: the same entries per frame, with "frame" (index
                                    from 0) = "image_id" and "file_name" the video
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# extension -> the OpenCV codec of the annotated copy
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}


class PredictError(Exception):
    """A user error, reported as one line without a traceback."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Adds "(default: X)" to an option's help only where it tells something: not for required
    options, positionals or options without a default, nor where the help states its own default
    (ArgumentDefaultsHelpFormatter adds it everywhere, twice for such options)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.required or not action.option_strings or action.default in (None, argparse.SUPPRESS)
                or "default" in text):
            return text
        return text + " (default: %(default)s)"


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a LazyConfig python file")
    parser.add_argument("--input", required=True,
                        help="a folder of images, a glob pattern ('photos/*.jpg'), an image or a video file")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the pictures and results.json")
    parser.add_argument("--confidence-threshold", type=float, default=0.5,
                        help="detections scoring below it are neither drawn nor written")
    parser.add_argument("--weights", help="checkpoint to load (default: the config's train.init_checkpoint)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[],
                        help="key=value config overrides, e.g. train.init_checkpoint=model_final.pth train.device=cpu")
    return parser


def is_video(path):
    return os.path.isfile(path) and path.lower().endswith(tuple(VIDEO_CODECS))


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
        # dataloader.test.mapper.opencv_resize=True: the reference's OpenCV read and resize, for
        # its converted models (efl.data.eod_test_mapper, docs/eod_checkpoints.md)
        self.reference_mapper = instantiate(mapper) if mapper.get("opencv_resize", False) else None

    def read(self, path):
        """The image as RGB uint8 (H, W, 3), and in the model's format."""
        from detectron2.data.detection_utils import convert_image_to_rgb, read_image

        try:
            if self.reference_mapper is not None:
                image = self.reference_mapper.read(path)
            else:
                image = read_image(path, format=self.input_format)
        except Exception as e:  # PIL and OpenCV raise several types for unreadable files
            raise PredictError(f"cannot read image {path}: {e}") from None
        return convert_image_to_rgb(image, self.input_format), image

    def convert(self, rgb):
        """An RGB uint8 (H, W, 3) array (a video frame) in the model's format."""
        from detectron2.data.detection_utils import convert_PIL_to_numpy
        from PIL import Image

        return convert_PIL_to_numpy(Image.fromarray(np.ascontiguousarray(rgb)), self.input_format)

    def __call__(self, image):
        import detectron2.data.transforms as T
        import torch

        height, width = image.shape[:2]
        if self.reference_mapper is not None:
            resized = self.reference_mapper.resize(image)
        else:
            aug_input = T.AugInput(image)
            self.augmentations(aug_input)
            resized = aug_input.image
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
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


def load_model(args, device=None):
    """``(cfg, model, weights)``: the config with the overrides, its model in eval mode with the
    weights (which must fit it exactly), on ``device`` (default: ``train.device``, the CPU
    without CUDA)."""
    import torch
    from detectron2.config import LazyConfig, instantiate

    from efl.engine import AtomicDetectionCheckpointer
    from efl.engine.defaults import with_train_schema
    from efl.engine.overrides import apply_overrides

    if not os.path.isfile(args.config_file):
        raise PredictError(f"--config-file {args.config_file} does not exist")
    cfg = apply_overrides(with_train_schema(LazyConfig.load(args.config_file)), list(args.opts))
    weights = args.weights or cfg.train.init_checkpoint
    if not weights:
        raise PredictError("no weights: pass --weights PATH or the override train.init_checkpoint=PATH")
    if not os.path.isfile(weights):
        raise PredictError(f"weights {weights} do not exist")
    model = instantiate(cfg.model).eval()
    AtomicDetectionCheckpointer(model, load_mode="strict").load(weights)
    device = device or str(cfg.train.device)
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

    video = is_video(args.input)
    files = [args.input] if video else list_images(args.input)
    try:
        cfg, model, weights = load_model(args)
    except (CheckpointError, OverrideError) as e:
        raise PredictError(str(e)) from None
    metadata = test_metadata(cfg)
    id_map = category_id_mapping(metadata, len(metadata.thing_classes))
    predictor = Predictor(cfg, model)
    os.makedirs(args.output, exist_ok=True)
    if video:
        predict_video(args, predictor, metadata, id_map, weights)
    else:
        predict_images(args, files, predictor, metadata, id_map, weights)


def detections(predictor, image, threshold):
    instances = predictor(image)
    return instances[instances.scores >= threshold]


def draw(rgb, instances, metadata):
    from detectron2.utils.visualizer import Visualizer

    return Visualizer(rgb, metadata).draw_instance_predictions(instances).get_image()


def write_results(results, output):
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(results, f)


def predict_images(args, files, predictor, metadata, id_map, weights):
    """Each readable image: a picture and its entries in results.json. An unreadable one is
    skipped and named; results.json holds the others (image_id stays the file's index)."""
    results, skipped = [], []
    for image_id, (path, name) in enumerate(zip(files, output_names(files))):
        try:
            rgb, image = predictor.read(path)
        except PredictError as e:
            print(f"skipped: {e}", file=sys.stderr)
            skipped.append(path)
            continue
        instances = detections(predictor, image, args.confidence_threshold)
        results += coco_results(instances, path, image_id, id_map)
        save_picture(draw(rgb, instances, metadata), os.path.join(args.output, name))
        print(f"{path}: {len(instances)} detections")
    write_results(results, args.output)
    done = len(files) - len(skipped)
    print(f"{done} images, {len(results)} detections (score >= {args.confidence_threshold}) with "
          f"{weights}; pictures and results.json in {args.output}")
    if skipped:
        print(f"{len(skipped)} of {len(files)} images skipped (unreadable): {', '.join(skipped)}", file=sys.stderr)
    if not done:
        raise PredictError(f"none of the {len(files)} images could be read (results.json is empty)")


def predict_video(args, predictor, metadata, id_map, weights):
    """Every frame of the video through the model: an annotated copy (same size and frame rate)
    and the frame's entries in results.json, with "frame" = "image_id" = the frame's index."""
    import cv2

    capture = cv2.VideoCapture(args.input)
    if not capture.isOpened():
        raise PredictError(f"cannot open video {args.input} (OpenCV {cv2.__version__} has no reader for it)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    name = os.path.basename(args.input)
    out_path = os.path.join(args.output, name)
    if os.path.abspath(out_path) == os.path.abspath(args.input):
        raise PredictError(f"--output {args.output} is the video's own folder: the annotated copy would replace it")
    codec = VIDEO_CODECS[os.path.splitext(name)[1].lower()]
    writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        capture.release()
        raise PredictError(f"cannot write {out_path} with codec {codec} (OpenCV {cv2.__version__})")
    results, frame_index = [], 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = bgr[:, :, ::-1]
            instances = detections(predictor, predictor.convert(rgb), args.confidence_threshold)
            entries = coco_results(instances, args.input, frame_index, id_map)
            for entry in entries:
                entry["frame"] = frame_index
            results += entries
            writer.write(draw(rgb, instances, metadata)[:, :, ::-1])
            frame_index += 1
    finally:
        capture.release()
        writer.release()
    write_results(results, args.output)
    if not frame_index:
        raise PredictError(f"video {args.input} has no frame OpenCV can decode")
    print(f"{args.input}: {frame_index} frames, {len(results)} detections (score >= {args.confidence_threshold}) "
          f"with {weights}; {out_path} and results.json in {args.output}")


def save_picture(rgb, path):
    from PIL import Image

    Image.fromarray(rgb).save(path)


if __name__ == "__main__":
    main()
