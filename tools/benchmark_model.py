#!/usr/bin/env python
"""Training-iteration time, peak training memory and inference time per image of the improved
baseline (configs/common/models/improved_retinanet.py), of Detectron2's RetinaNet (its model-zoo
LazyConfig) with the same ResNet backbone (torchvision layout, FrozenBN, stem and res2 frozen) and
of YOLOX-IP-S (configs/common/models/yolox_ip.py: CSPDarknet + PAFPN, BN, trained from scratch),
with the same number of classes and the same random inputs, measured in one run. YOLOX-IP-S
infers on the same images as the others here (no padding to 640 x 640); --depth sets the ResNets.

Training iteration = forward + backward + SGD step, median over --repeats after one warm-up; the
models alternate step by step so that load changes on a shared machine hit both alike.
Inference = eval-mode forward of the same batch (NMS and post-processing included), per image.
Memory of a training step (after a warm-up step): on CUDA, torch.cuda.max_memory_allocated; on
CPU, the peak RSS growth of a fresh subprocess per model above its RSS once model and inputs exist.
All models are randomly initialised (nothing is downloaded).

    python tools/benchmark_model.py                              # CPU (or CUDA when present)
    python tools/benchmark_model.py --depth 50 --size 512 --num-images 2 --json bench.json
    python tools/benchmark_model.py --models improved_retinanet yolox_ip_s   # a subset
    python tools/benchmark_model.py --device cuda --size 800x1333 --num-classes 1203  # LVIS-sized
    python tools/benchmark_model.py --device cuda --amp ...   # fp16 autocast and a GradScaler
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODELS = ["improved_retinanet", "detectron2_retinanet", "yolox_ip_s"]


def build_model(name, depth, num_classes):
    import efl  # noqa: F401  (compatibility fixes before detectron2)
    from detectron2 import model_zoo
    from detectron2.config import LazyConfig, instantiate

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if name == "yolox_ip_s":
        cfg = LazyConfig.load(os.path.join(root, "configs/common/models/yolox_ip.py")).model
        cfg.num_classes = num_classes
        cfg.test_pad_to = None  # the same images as the other models
        return instantiate(cfg)
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


def parse_size(text):
    """``"512"`` (a square) or ``"800x1333"`` (height x width) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        height, width = (int(parts[0]), int(parts[0])) if len(parts) == 1 else map(int, parts)
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"expected a side (512) or HEIGHTxWIDTH (800x1333), got {text!r}")
    return height, width


def make_batch(num_images, size, num_classes, device, seed=0):
    """Random images of ``size`` = (height, width) with 10 random boxes each."""
    import torch
    from detectron2.structures import Boxes, Instances

    height, width = size
    extent = torch.tensor([width, height], dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(num_images):
        instances = Instances((height, width))
        xy = torch.rand(10, 2, generator=generator) * extent * 0.7
        wh = torch.rand(10, 2, generator=generator) * extent * 0.3 + 16
        instances.gt_boxes = Boxes(torch.cat([xy, torch.minimum(xy + wh, extent)], 1))
        instances.gt_classes = torch.randint(0, num_classes, (10,), generator=generator)
        image = torch.rand(3, height, width, generator=generator) * 255
        batch.append({"image": image.to(device), "instances": instances.to(device)})
    return batch


def current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Bench:
    """One model with its inputs and optimizer; times one training step or one inference."""

    def __init__(self, name, args, device):
        import torch

        torch.manual_seed(0)
        self.name = name
        self.device = device
        self.model = build_model(name, args.depth, args.num_classes).to(device)
        self.batch = make_batch(args.num_images, args.size, args.num_classes, device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=1e-4)
        # --amp: as Detectron2's AMPTrainer, fp16 autocast around the forward and a GradScaler
        self.amp = args.amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=args.amp)

    def _sync(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def train_step(self):
        """Seconds of one forward + backward + SGD step."""
        import torch
        from detectron2.utils.events import EventStorage

        self.model.train()
        self._sync()
        start = time.perf_counter()
        with EventStorage(), torch.autocast(self.device.type, enabled=self.amp):
            losses = self.model(self.batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._sync()
        return time.perf_counter() - start

    def inference(self):
        """Seconds of one eval-mode forward of the batch."""
        import torch

        self.model.eval()
        self._sync()
        start = time.perf_counter()
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.amp):
            self.model(self.batch)
        self._sync()
        return time.perf_counter() - start


def peak_train_memory_mb(name, args, device):
    """Peak memory of a training step (after one warm-up step), see the module docstring."""
    import torch

    bench = _Bench(name, args, device)
    rss_before = current_rss_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    bench.train_step()
    bench.train_step()
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is in KiB on Linux
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before) / 2**20


def measure(args, device):
    """Rows of the table. The models alternate step by step, so that a load change on a shared
    machine affects both alike."""
    benches = [_Bench(name, args, device) for name in args.models]
    train = {b.name: [] for b in benches}
    infer = {b.name: [] for b in benches}
    for bench in benches:  # warm-up
        bench.train_step()
        bench.inference()
    for _ in range(args.repeats):
        for bench in benches:
            train[bench.name].append(bench.train_step())
        for bench in benches:
            infer[bench.name].append(bench.inference())
    rows = []
    for bench in benches:
        rows.append({
            "model": bench.name,
            "device": str(device),
            "backbone": "CSPDarknet-S" if bench.name == "yolox_ip_s" else f"ResNet-{args.depth}",
            "images": args.num_images,
            "size": "x".join(map(str, args.size)),
            "num_classes": args.num_classes,
            "precision": "amp_fp16" if args.amp else "fp32",
            "train_iter_s": statistics.median(train[bench.name]),
            "infer_s_per_image": statistics.median(infer[bench.name]) / args.num_images,
        })
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="cpu or cuda (default: cuda when present); cuda is an error without CUDA")
    parser.add_argument("--depth", type=int, default=50, choices=[18, 34, 50, 101])
    parser.add_argument("--size", type=parse_size, default=(512, 512),
                        help="input size: a square side (512) or HEIGHTxWIDTH (800x1333, LVIS's test size)")
    parser.add_argument("--num-images", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--amp", action="store_true",
                        help="CUDA only: fp16 autocast and a GradScaler, as train.amp.enabled=True")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS,
                        help="the models to compare (default: all); the first ratio column is relative "
                             "to detectron2_retinanet when it is measured, else to the first model")
    parser.add_argument("--json", help="write the table as JSON to this file")
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is False)")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.amp and device.type != "cuda":
        parser.error("--amp needs CUDA (Detectron2's AMPTrainer does); use --device cuda on a GPU machine")
    if args.worker:
        print(json.dumps(peak_train_memory_mb(args.worker, args, device)))
        return

    peaks = {}
    for name in args.models:
        if device.type == "cuda":
            peaks[name] = peak_train_memory_mb(name, args, device)
            continue
        # a fresh process per model, so the RSS peaks are not shared
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name, "--device", "cpu"]
        for flag in ("depth", "num_images", "num_classes"):
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
        cmd += ["--size", "x".join(map(str, args.size))]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        peaks[name] = json.loads(out.strip().splitlines()[-1])
    rows = measure(args, device)
    for row in rows:
        row["train_peak_mb"] = peaks[row["model"]]

    base = next((row for row in rows if row["model"] == "detectron2_retinanet"), rows[0])
    x_base = "x d2" if base["model"] == "detectron2_retinanet" else "x 1st"
    header = (f"{'model':<22}{'backbone':>14}{'train s/iter':>14}{x_base:>7}{'train peak MB':>15}"
              f"{'infer s/img':>13}{x_base:>7}")
    print(f"device {device}, {args.num_images} images of {args.size[0]}x{args.size[1]} (HxW), "
          f"{args.num_classes} classes, {'AMP fp16' if args.amp else 'fp32'}, median of {args.repeats}")
    print(header)
    for row in rows:
        print(f"{row['model']:<22}{row['backbone']:>14}{row['train_iter_s']:>14.3f}"
              f"{row['train_iter_s'] / base['train_iter_s']:>7.2f}{row['train_peak_mb']:>15.0f}{row['infer_s_per_image']:>13.3f}"
              f"{row['infer_s_per_image'] / base['infer_s_per_image']:>7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
