#!/usr/bin/env python
"""Per-sample time of the YOLOX-IP training mapper (efl.data.yolox_augmentation.YOLOXTrainMapper:
Mosaic, random affine, MixUp, HSV, flip, random size) at 640 on JPEG images, next to the time to
only decode the 5 images such a sample reads (the sampled image, 3 mosaic tiles, the MixUp
partner), measured in the same run.

The JPEGs are generated into a temporary directory (LVIS-like sizes, 640 x 480 and its usual
variants, textured content, a few boxes each); nothing is downloaded. Samples alternate
"mapper, then decode of the same 5 files" so that a load change on a shared machine hits both
alike; both use the mapper's decoder (Detectron2's `read_image`, BGR). OpenCV runs on
--threads threads (default 1: one data-loader worker per core). --profile adds the time of each
step of the pipeline (decode included), from timing wrappers around its functions.

    python tools/benchmark_mapper.py                          # 40 samples, 1 thread
    python tools/benchmark_mapper.py --samples 100 --profile --json mapper.json
"""
import argparse
import collections
import json
import os
import statistics
import tempfile
import time

# LVIS images are mostly 640 px on the longer side (COCO's images)
SIZES = [(480, 640), (427, 640), (640, 480), (425, 640), (640, 427), (360, 640), (512, 640), (640, 640)]


def write_jpegs(root, num_images, seed=0):
    """Detectron2 dataset dicts of ``num_images`` textured JPEGs (quality 90) with 2-12 boxes."""
    import cv2
    import numpy as np
    from detectron2.structures import BoxMode

    rng = np.random.RandomState(seed)
    dicts = []
    for i in range(num_images):
        h, w = SIZES[i % len(SIZES)]
        # smooth colour fields plus noise: JPEG sizes and decode times close to photographs'
        low = rng.randint(0, 256, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
        image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
        image = cv2.add(image, rng.randint(0, 24, (h, w, 3)).astype(np.uint8))
        path = os.path.join(root, f"{i:06d}.jpg")
        cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        annotations = []
        for _ in range(rng.randint(2, 13)):
            bw, bh = rng.uniform(8, w / 2), rng.uniform(8, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            annotations.append({"bbox": [x, y, bw, bh], "bbox_mode": BoxMode.XYWH_ABS,
                                "category_id": int(rng.randint(0, 1203))})
        dicts.append({"file_name": path, "image_id": i, "height": h, "width": w, "annotations": annotations})
    return dicts


class _StepTimer:
    """Accumulates the seconds spent in named functions of a module while installed."""

    def __init__(self):
        self.seconds = collections.defaultdict(float)
        self._saved = []

    def wrap(self, owner, name, label=None):
        function = getattr(owner, name)
        label = label or name

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        self._saved.append((owner, name, function))
        setattr(owner, name, timed if not isinstance(owner, type) else staticmethod(timed))

    def restore(self):
        for owner, name, function in reversed(self._saved):
            setattr(owner, name, function if not isinstance(owner, type) else staticmethod(function))
        self._saved.clear()


def measure(dicts, args):
    import numpy as np
    from detectron2.data import detection_utils as utils

    from efl.data import yolox_transforms as YT
    from efl.data.yolox_augmentation import YOLOXTrainMapper

    mapper = YOLOXTrainMapper(dataset_dicts=dicts, input_size=args.input_size)
    files = []
    load = mapper.load

    def recording_load(dataset_dict):
        files.append(dataset_dict["file_name"])
        return load(dataset_dict)

    mapper.load = recording_load  # the mapper calls self.load: records the 5 files it reads
    timer = _StepTimer()
    if args.profile:
        timer.wrap(utils, "read_image", "decode (read_image)")
        for name in ("resize_to_fit", "mosaic", "warp_affine", "mixup_partner_canvas", "mixup",
                     "hsv_jitter", "horizontal_flip", "resize_longest_side_and_pad"):
            timer.wrap(YT, name)
    mapper_s, decode_s = [], []
    rng = np.random.RandomState(args.seed)
    try:
        for k in range(args.warmup + args.samples):
            d = dicts[rng.randint(len(dicts))]
            np.random.seed(args.seed + k)
            files.clear()
            start = time.perf_counter()
            mapper(d)
            mapper_time = time.perf_counter() - start
            read = list(files)
            start = time.perf_counter()
            for f in read:
                utils.read_image(f, format="BGR")
            decode_time = time.perf_counter() - start
            if k == args.warmup - 1:
                timer.seconds.clear()
            if k >= args.warmup:
                if len(read) != 5:  # the sample, 3 mosaic tiles, the MixUp partner
                    raise RuntimeError(f"the mapper read {len(read)} images, not 5: {read}")
                mapper_s.append(mapper_time)
                decode_s.append(decode_time)
    finally:
        timer.restore()
    steps = {name: s / args.samples for name, s in timer.seconds.items()}
    if args.profile:  # the read_image wrapper also timed the decode baseline's own reads
        steps["decode (read_image)"] -= statistics.mean(decode_s)
    return mapper_s, decode_s, steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="timed samples (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=32, help="JPEGs to generate")
    parser.add_argument("--input-size", type=int, default=640, help="the mapper's input_size")
    parser.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="time each step of the pipeline too")
    parser.add_argument("--json", help="write the numbers as JSON to this file")
    args = parser.parse_args()
    if args.samples < 1 or args.warmup < 1 or args.images < 1:
        parser.error("--samples, --warmup and --images must be at least 1")

    import cv2

    import efl  # noqa: F401  (compatibility fixes before detectron2)

    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as root:
        dicts = write_jpegs(root, args.images, seed=args.seed)
        mapper_s, decode_s, steps = measure(dicts, args)

    mapper_ms = 1000 * statistics.median(mapper_s)
    decode_ms = 1000 * statistics.median(decode_s)
    ratio = statistics.median(m / d for m, d in zip(mapper_s, decode_s))
    print(f"YOLOXTrainMapper(input_size={args.input_size}), {args.samples} samples of {args.images} JPEGs "
          f"(~640x480), cv2 threads {args.threads}, median per sample:")
    print(f"{'':<30}{'ms/sample':>10}")
    print(f"{'decode the 5 images':<30}{decode_ms:>10.1f}")
    print(f"{'mapper (decode included)':<30}{mapper_ms:>10.1f}")
    print(f"{'mapper / decode':<30}{ratio:>10.2f}   (median of the per-sample ratios; target <= 2)")
    if steps:
        print("\nmean per sample of each step (inside the mapper):")
        for name, s in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28}{1000 * s:>10.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": args.samples, "threads": args.threads, "input_size": args.input_size,
                       "mapper_ms": mapper_ms, "decode_ms": decode_ms, "ratio": ratio,
                       "steps_ms": {k: 1000 * v for k, v in steps.items()}}, f, indent=2)


if __name__ == "__main__":
    main()
