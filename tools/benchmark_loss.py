#!/usr/bin/env python
"""Speed and memory of the classification loss on an LVIS-sized input (N anchors × 1203 classes).

Variants, each forward + backward of the loss on the same logits and labels:
  fvcore_focal_autograd   fvcore's sigmoid_focal_loss_jit through autograd (what Detectron2's
                          RetinaNet runs), one-hot targets built from the labels
  efl_torch_autograd_hook EFL written with torch ops through autograd, per-class γ_j and w_j, and a
                          tensor hook collecting |grad| per class: what hook-based EFL ports pay
  efl (this project)      EqualizedFocalLoss in training mode, statistics update included
  eqfl (this project)     EqualizedQualityFocalLoss in training mode, statistics update included

Time: median over --repeats after one warm-up. Memory: on CUDA, torch.cuda.max_memory_allocated
above what the inputs hold; on CPU, the peak RSS growth of a fresh subprocess per variant above its
RSS once the inputs exist (so the variants cannot share freed memory).

    python tools/benchmark_loss.py                     # CPU, and CUDA when present
    python tools/benchmark_loss.py --num-anchors 45000 --device cuda --json out.json
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = ["fvcore_focal_autograd", "efl_torch_autograd_hook", "efl", "eqfl"]


def make_inputs(num_anchors, num_classes, device, seed=0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(num_anchors, num_classes, generator=generator) - 4.0).to(device)
    # About 1% positive anchors, as in an LVIS image (~45k anchors, a few hundred positives).
    labels = torch.full((num_anchors,), num_classes, dtype=torch.long)
    positive = torch.rand(num_anchors, generator=generator) < 0.01
    labels[positive] = torch.randint(0, num_classes, (int(positive.sum()),), generator=generator)
    scores = torch.rand(num_anchors, generator=generator)
    return logits, labels.to(device), scores.to(device)


def build_step(variant, num_classes, device):
    """A callable(logits, labels, scores) running one forward + backward."""
    import torch
    import torch.nn.functional as F
    from fvcore.nn import sigmoid_focal_loss_jit

    from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

    normalizer = 200.0
    if variant == "fvcore_focal_autograd":
        def step(logits, labels, scores):
            x = logits.requires_grad_()
            targets = F.one_hot(labels, num_classes + 1)[:, :num_classes].to(x.dtype)
            loss = sigmoid_focal_loss_jit(x, targets, alpha=0.25, gamma=2.0, reduction="sum") / normalizer
            loss.backward()
            x.grad = None
        return step

    if variant == "efl_torch_autograd_hook":
        ratio = torch.rand(num_classes, device=device)
        gamma = 2.0 + 8.0 * (1 - ratio)
        weight = gamma / 2.0
        pos_sum = torch.zeros(num_classes, device=device)
        neg_sum = torch.zeros(num_classes, device=device)

        def step(logits, labels, scores):
            x = logits.requires_grad_()
            targets = F.one_hot(labels, num_classes + 1)[:, :num_classes].to(x.dtype)

            def collect(grad):
                grad = grad.abs()
                pos_sum.add_((grad * targets).sum(0))
                neg_sum.add_((grad * (1 - targets)).sum(0))

            x.register_hook(collect)
            p = torch.sigmoid(x)
            ce = F.binary_cross_entropy_with_logits(x, targets, reduction="none")
            p_t = p * targets + (1 - p) * (1 - targets)
            alpha_t = 0.25 * targets + 0.75 * (1 - targets)
            loss = (alpha_t * weight * (1 - p_t) ** gamma * ce).sum() / normalizer
            loss.backward()
            x.grad = None
        return step

    loss_module = (EqualizedFocalLoss if variant == "efl" else EqualizedQualityFocalLoss)(num_classes).to(device)
    loss_module.pos_neg.uniform_()  # a realistic spread of γ_j, not the all-focal first iteration

    def step(logits, labels, scores):
        x = logits.requires_grad_()
        if variant == "efl":
            loss = loss_module(x, labels, normalizer)
        else:
            loss = loss_module(x, labels, scores, normalizer)
        loss.backward()
        x.grad = None
    return step


def current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_variant(variant, num_anchors, num_classes, device, repeats):
    """Measure one variant in this process; returns a dict."""
    import torch

    import efl  # noqa: F401

    logits, labels, scores = make_inputs(num_anchors, num_classes, device)
    step = build_step(variant, num_classes, device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    if device == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = current_rss_bytes()
    times = []
    for i in range(repeats + 1):
        sync()
        start = time.perf_counter()
        step(logits, labels, scores)
        sync()
        if i > 0:  # the first call warms up allocators and kernels
            times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    logits_bytes = logits.numel() * logits.element_size()
    return {
        "variant": variant, "device": device, "num_anchors": num_anchors, "num_classes": num_classes,
        "median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times), "max_ms": 1000 * max(times),
        "peak_mb": peak / 2**20,
        "peak_in_logits": peak / logits_bytes, "threads": torch.get_num_threads(),
    }


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each option's default."""


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--num-anchors", type=_positive_int, default=20000, help="rows N of the logits")
    parser.add_argument("--num-classes", type=_positive_int, default=1203, help="columns C of the logits")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="'all': the CPU, and CUDA when present; 'cuda' is an error without CUDA")
    parser.add_argument("--repeats", type=_positive_int, default=5, help="timed calls after one warm-up")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS, help="what to measure")
    parser.add_argument("--json", help="write the table as JSON to this file")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser


def run_worker(cmd, what):
    """Run one measuring process; its last stdout line is the JSON row. A failure ends the run
    with the worker's own error output, not a bare CalledProcessError."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stderr.strip() or proc.stdout.strip() or "(no output)")[-4000:]
        sys.exit(f"error: the worker measuring {what} failed (exit code {proc.returncode}):\n{output}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = build_parser()
    args = parser.parse_args()

    if args.worker:
        device = "cuda" if args.device == "cuda" else "cpu"
        print(json.dumps(run_variant(args.worker, args.num_anchors, args.num_classes, device, args.repeats)))
        return

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available on this machine (torch.cuda.is_available() is "
                     "False); use --device cpu or all")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    load = os.getloadavg()[0]  # before our own workers raise it
    rows = []
    for device in devices:
        for variant in args.variants:
            # A fresh process per variant: peak memory is that variant's alone.
            cmd = [sys.executable, __file__, "--worker", variant, "--device", device,
                   "--num-anchors", str(args.num_anchors), "--num-classes", str(args.num_classes),
                   "--repeats", str(args.repeats)]
            rows.append(run_worker(cmd, f"{variant} on {device}"))
            print(f"  measured {variant} on {device}", file=sys.stderr)

    header = ("| device | variant | fwd+bwd median (ms) | min–max (ms) | × fvcore time | peak memory (MB) | "
              "× fvcore memory | peak / logits |")
    print(f"\nN = {args.num_anchors} anchors × C = {args.num_classes} classes, fp32 logits, "
          f"{rows[0]['threads'] if rows else '?'} threads, median of {args.repeats}, load average {load:.1f} at the start "
          f"on {os.cpu_count()} cores\n")
    if load > 0.5 * (os.cpu_count() or 1):
        # other processes share the cores: times (and their ratios) can be off by several times
        print(f"warning: the machine is busy (load {load:.1f}); rerun on a quiet machine for numbers to quote\n",
              file=sys.stderr)
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = next((r for r in rows if r["device"] == row["device"] and r["variant"] == "fvcore_focal_autograd"), None)
        time_ratio = f"{row['median_ms'] / base['median_ms']:.2f}" if base else "-"
        mem_ratio = f"{row['peak_mb'] / base['peak_mb']:.2f}" if base else "-"
        print(f"| {row['device']} | {row['variant']} | {row['median_ms']:.0f} | "
              f"{row['min_ms']:.0f}–{row['max_ms']:.0f} | {time_ratio} | "
              f"{row['peak_mb']:.0f} | {mem_ratio} | {row['peak_in_logits']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
