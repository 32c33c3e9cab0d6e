#!/usr/bin/env python
"""Does the identity between an equalized loss's statistics and the classification bias's SGD
trajectory hold on a real run, and which of its terms sets each class's gradient ratio?

    N_j - P_j = D_j + lambda sum_t |b_j(t)| + K_j          (docs/method.md §8)

Reads `<output_dir>/bias_ledger.json` (written by runs with `train.bias_ledger=True`, as the CPU
demo configs) and the training set's per-class image counts, prints per LVIS bucket the medians of
P_j, N_j, the weight-decay pull, the displacement term D_j and the largest residual, and draws,
per run, N_j - P_j against the sum of the terms and the terms against the image count.

    python tools/bias_identity.py --run focal=output/demo/focal --run efl=output/demo/efl \\
        --output docs/figures/bias_identity.png
"""
import argparse
import json
import os
import sys

import numpy as np

from ratio_by_frequency import BUCKET_COLORS, BUCKETS, class_table, train_dataset_name, training_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=OUTPUT_DIR",
                        help="a finished run trained with train.bias_ledger=True (repeat for several)")
    parser.add_argument("--output", help="PNG to write (default: no figure)")
    args = parser.parse_args(argv)
    args.runs = []
    for item in args.run:
        label, sep, directory = item.partition("=")
        if not sep or not label or not directory:
            parser.error(f"--run {item!r}: expected LABEL=OUTPUT_DIR")
        args.runs.append((label, directory))
    return args


def load_ledger(output_dir):
    from efl.engine.bias_ledger import BIAS_LEDGER_FILE

    path = os.path.join(output_dir, BIAS_LEDGER_FILE)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: train with train.bias_ledger=True (the demo configs do)")
    with open(path) as f:
        ledger = json.load(f)
    ledger["terms"] = {k: np.asarray(v, dtype=float) for k, v in ledger["terms"].items()}
    return ledger


def summarize(label, ledger, buckets):
    t = ledger["terms"]
    scale = max(np.abs(t["weight_decay_pull"]).max(), np.abs(t["displacement"]).max())
    row = {"run": label, "steps": ledger["steps"], "clipped_steps": ledger["clipped_steps"],
           "max_relative_residual": float(np.abs(t["residual"]).max() / scale),
           "max_relative_trajectory_difference":
               float(np.abs(t["displacement_trajectory"] - t["displacement"]).max() / scale)}
    for b in BUCKETS:
        rows = buckets == b
        for name in ("positive", "negative", "weight_decay_pull", "displacement", "clipped"):
            row[f"{name}_{b}"] = float(np.median(t[name][rows])) if rows.any() else float("nan")
        row[f"ratio_{b}"] = float(np.median(t["positive"][rows] / t["negative"][rows])) if rows.any() else float("nan")
    return row


def markdown(rows):
    header = ["run", "steps (clipped)", "bucket", "median P_j", "median N_j", "median P_j/N_j",
              "weight-decay pull", "displacement D_j", "clipping K_j", "max |residual| / scale"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        for b in BUCKETS:
            lines.append(
                f"| {r['run']} | {r['steps']} ({r['clipped_steps']}) | {b} | {r[f'positive_{b}']:.2f} | "
                f"{r[f'negative_{b}']:.2f} | {r[f'ratio_{b}']:.2f} | {r[f'weight_decay_pull_{b}']:.2f} | "
                f"{r[f'displacement_{b}']:.2f} | {r[f'clipped_{b}']:.2f} | {r['max_relative_residual']:.1e} |")
    return "\n".join(lines)


def plot(path, panels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for (label, ledger, counts, buckets), (left, right) in zip(panels, axes):
        t = ledger["terms"]
        predicted = t["displacement"] + t["weight_decay_pull"] + t["clipped"]
        for b, name in BUCKETS.items():
            rows = buckets == b
            left.scatter(predicted[rows], t["negative_minus_positive"][rows], s=18, c=BUCKET_COLORS[b], label=name)
        low, high = float(min(predicted.min(), 0)), float(predicted.max())
        left.plot([low, high], [low, high], color="0.5", lw=1, zorder=0, label="y = x")
        left.set_xlabel(r"$D_j + \lambda\sum_t |b_j(t)| + K_j$ (SGD trajectory of the bias)")
        left.set_ylabel(r"$N_j - P_j$ (the loss's statistics)")
        left.set_title(f"{label}: identity over {ledger['steps']} iterations")
        left.legend(fontsize=8)
        order = np.argsort(counts, kind="stable")
        for key, style, name in (("negative", "o-", r"$N_j$"), ("positive", "s-", r"$P_j$"),
                                 ("weight_decay_pull", "^-", r"pull $\lambda\sum_t|b_j|$"),
                                 ("displacement", "v-", r"displacement $D_j$")):
            right.plot(counts[order], t[key][order], style, ms=3, lw=0.8, label=name)
        right.set_xscale("log")
        right.set_yscale("symlog", linthresh=1.0)
        right.set_xlabel("training images of the class")
        right.set_title(f"{label}: the terms per class")
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    rows, panels = [], []
    for label, directory in args.runs:
        ledger = load_ledger(directory)
        counts, buckets, _ = class_table(training_json(train_dataset_name(directory)), ledger["num_classes"])
        rows.append(summarize(label, ledger, buckets))
        panels.append((label, ledger, counts, buckets))
    print(markdown(rows))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        plot(args.output, panels)
        print(f"figure: {args.output}")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
