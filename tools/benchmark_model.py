#!/usr/bin/env python
"""Training-iteration time, peak training memory and inference time per image of the improved
baseline (configs/common/models/improved_retinanet.py) and of Detectron2's RetinaNet (its model-zoo
LazyConfig) with the same ResNet backbone (torchvision layout, FrozenBN, stem and res2 frozen),
the same number of classes and the same random inputs, measured in one run.

Training iteration = forward + backward + SGD step, median over --repeats after one warm-up.
Inference = eval-mode forward of the same batch (NMS and post-processing included), per image.
Memory: on CUDA, torch.cuda.max_memory_allocated during the training iterations; on CPU, the peak
RSS growth of a fresh subprocess per model above its RSS once model and inputs exist.
Both models are randomly initialised (nothing is downloaded).

    python tools/benchmark_model.py                              # CPU (or CUDA when present)
    python tools/benchmark_model.py --depth 50 --size 512 --num-images 2 --json bench.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODELS = ["improved_retinanet", "detectron2_retinanet"]


def build_model(name, depth, num_classes):
    import efl  # noqa: F401  (compatibility fixes before detectron2)
    from detectron2 import model_zoo
    from detectron2.config import LazyConfig, instantiate

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if name == "improved_retinanet":
        cfg = LazyConfig.load(os.path.join(root, "configs/common/models/improved_retinanet.py")).model
    else:
        cfg = model_zoo.get_config("common/models/retinanet.py").model
        # the same backbone as the improved baseline
        cfg.backbone.bottom_up.stages.stride_in_1x1 = False
        cfg.backbone.bottom_up.freeze_at = 2
    cfg.backbone.bottom_up.stages.depth = depth
    cfg.num_classes = num_classes
    return instantiate(cfg)


def make_batch(num_images, size, num_classes, device, seed=0):
    import torch
    from detectron2.structures import Boxes, Instances

    generator = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(num_images):
        instances = Instances((size, size))
        xy = torch.rand(10, 2, generator=generator) * size * 0.7
        wh = torch.rand(10, 2, generator=generator) * size * 0.3 + 16
        instances.gt_boxes = Boxes(torch.cat([xy, (xy + wh).clamp(max=size)], 1))
        instances.gt_classes = torch.randint(0, num_classes, (10,), generator=generator)
        image = torch.rand(3, size, size, generator=generator) * 255
        batch.append({"image": image.to(device), "instances": instances.to(device)})
    return batch


def current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_model(name, args, device):
    import torch
    from detectron2.utils.events import EventStorage

    torch.manual_seed(0)
    model = build_model(name, args.depth, args.num_classes).to(device)
    batch = make_batch(args.num_images, args.size, args.num_classes, device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def train_step():
        losses = model(batch)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    rss_before = current_rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_times = []
    model.train()
    with EventStorage():
        for i in range(args.repeats + 1):
            sync()
            start = time.perf_counter()
            train_step()
            sync()
            if i > 0:  # the first is a warm-up
                train_times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        # ru_maxrss is in KiB on Linux
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before) / 2**20

    model.eval()
    infer_times = []
    with torch.no_grad():
        for i in range(args.repeats + 1):
            sync()
            start = time.perf_counter()
            model(batch)
            sync()
            if i > 0:
                infer_times.append(time.perf_counter() - start)
    return {
        "model": name,
        "device": str(device),
        "depth": args.depth,
        "images": args.num_images,
        "size": args.size,
        "num_classes": args.num_classes,
        "train_iter_s": statistics.median(train_times),
        "train_peak_mb": peak_mb,
        "infer_s_per_image": statistics.median(infer_times) / args.num_images,
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--depth", type=int, default=50, choices=[18, 34, 50, 101])
    parser.add_argument("--size", type=int, default=512, help="square input side in pixels")
    parser.add_argument("--num-images", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the table as JSON to this file")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.worker:
        print(json.dumps(run_model(args.worker, args, device)))
        return

    rows = []
    for name in MODELS:
        if device.type == "cuda":
            rows.append(run_model(name, args, device))
            continue
        # a fresh process per model, so the RSS peaks are not shared
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--device", "cpu"]
        for flag in ("depth", "size", "num_images", "num_classes", "repeats"):
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))

    base = rows[1]
    header = f"{'model':<22}{'train s/iter':>14}{'x d2':>7}{'train peak MB':>15}{'infer s/img':>13}{'x d2':>7}"
    print(f"device {device}, ResNet-{args.depth}, {args.num_images} images of {args.size}x{args.size}, "
          f"{args.num_classes} classes, median of {args.repeats}")
    print(header)
    for row in rows:
        print(f"{row['model']:<22}{row['train_iter_s']:>14.3f}{row['train_iter_s'] / base['train_iter_s']:>7.2f}"
              f"{row['train_peak_mb']:>15.0f}{row['infer_s_per_image']:>13.3f}"
              f"{row['infer_s_per_image'] / base['infer_s_per_image']:>7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
