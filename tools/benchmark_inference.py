#!/usr/bin/env python
"""CPU inference time per image of the improved baseline R50 and YOLOX-IP-S (1,203 classes) in
PyTorch eager mode, as TorchScript and under ONNX Runtime, measured in one run.

Each model is built from its LVIS config (configs/efl_improved_baseline_r50_2x_rfs.py,
configs/efl_yolox_ip_s_300e_rfs.py) with random weights (nothing is downloaded; the post-processing
keeps its full top-k and NMS load with any weights), exported with efl.export (the graph of
tools/export_model.py: preprocessing through NMS), and run on one image of the config's test size:
800 x 1067 for the improved baseline (a 4:3 picture resized to short side 800; --size H W), 480 x
640 for YOLOX-IP-S (padded to 640 x 640 by the model). Time = one image in, detections out; the
three runtimes alternate image by image so that load changes on a shared machine hit them alike;
median and spread (min-max) over --repeats after --warmup. Every runtime uses --threads threads.

    .venv/bin/python tools/benchmark_inference.py --threads 1 --repeats 5
    .venv/bin/python tools/benchmark_inference.py --models improved_baseline_r50 --size 800 1333 --json inference.json
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    "improved_baseline_r50": "configs/efl_improved_baseline_r50_2x_rfs.py",
    "yolox_ip_s": "configs/efl_yolox_ip_s_300e_rfs.py",
}
RUNTIMES = ["eager", "torchscript", "onnxruntime"]


def build_parser():
    from predict import HelpFormatter  # tools/predict.py: each default once, none for None

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS), help="models to time")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=[800, 1067],
                        help="input size of the improved baseline (YOLOX-IP-S: its test size, 480 x 640)")
    parser.add_argument("--threads", type=int, default=1, help="threads of every runtime")
    parser.add_argument("--repeats", type=int, default=5, help="timed images per model and runtime")
    parser.add_argument("--warmup", type=int, default=1, help="untimed images first")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    return parser


def build_model(name):
    import torch
    from detectron2.config import LazyConfig, instantiate

    torch.manual_seed(0)
    cfg = LazyConfig.load(os.path.join(REPO, CONFIGS[name]))
    return instantiate(cfg.model).eval()


def input_size(name, model, size):
    if model.test_pad_to:
        return (480, 640) if tuple(model.test_pad_to) == (640, 640) else tuple(model.test_pad_to)
    return tuple(size)


def runners(model, size, threads, folder):
    """name -> callable(image tensor) for the three runtimes of one model."""
    import torch

    from efl.export import ExportedDetector, export_onnx, export_torchscript

    def eager(image):
        with torch.no_grad():
            return model([{"image": image}])[0]["instances"]

    onnx_path, ts_path = os.path.join(folder, "model.onnx"), os.path.join(folder, "model.ts")
    export_onnx(model, onnx_path, size)
    export_torchscript(model, ts_path, size)
    return {"eager": eager, "torchscript": ExportedDetector(ts_path),
            "onnxruntime": ExportedDetector(onnx_path, threads)}


def measure(name, args):
    import torch

    model = build_model(name)
    size = input_size(name, model, args.size)
    image = (torch.rand((3, *size), generator=torch.Generator().manual_seed(0)) * 255).round()
    with tempfile.TemporaryDirectory() as folder:
        run = runners(model, size, args.threads, folder)
        times = {runtime: [] for runtime in RUNTIMES}
        for step in range(args.warmup + args.repeats):
            for runtime in RUNTIMES:
                start = time.perf_counter()
                run[runtime](image)
                if step >= args.warmup:
                    times[runtime].append(time.perf_counter() - start)
    rows = []
    for runtime in RUNTIMES:
        t = times[runtime]
        rows.append({"model": name, "input": f"{size[0]}x{size[1]}", "runtime": runtime,
                     "median_ms": 1000 * statistics.median(t), "min_ms": 1000 * min(t), "max_ms": 1000 * max(t),
                     "repeats": len(t)})
    eager_ms = rows[0]["median_ms"]
    for row in rows:
        row["speedup_vs_eager"] = eager_ms / row["median_ms"]
    return rows


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import efl  # noqa: F401  (Detectron2 compatibility fixes)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for name in args.models:
        rows += measure(name, args)
    load_after = os.getloadavg()
    import onnxruntime

    header = (f"CPU inference per image, {args.threads} thread(s), median [min-max] of {args.repeats} "
              f"(torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {os.cpu_count()} CPUs, "
              f"1-min load {load_before[0]:.1f} before / {load_after[0]:.1f} after)")
    print(header)
    print("| model | input | runtime | ms / image | vs eager |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['runtime']} | {r['median_ms']:.0f} "
              f"[{r['min_ms']:.0f}-{r['max_ms']:.0f}] | {r['speedup_vs_eager']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "threads": args.threads, "load_before": load_before,
                       "load_after": load_after, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
