#!/usr/bin/env python
"""Each class's accumulated positive / negative gradient ratio P_j / N_j at the end of training,
against its number of training images: does it rise with frequency, as on LVIS (Li et al., CVPR
2022, Fig. 1), and do the rare classes end below 1, where EFL starts to act?

Reads, per run, the loss buffers saved at the end of training
(`<output_dir>/efl_statistics/rank0.pth`, `pos_grad` / `neg_grad`) and the training set's metadata
(the categories' `image_count` and `frequency` in the LVIS json of the dataset named in
`<output_dir>/config.yaml`). A focal
run (scale_factor 0) measures the imbalance without EFL acting on it.

    python tools/ratio_by_frequency.py --run default=/tmp/runs/focal_default \\
        --run fine_grained=/tmp/runs/focal_fg --output docs/figures/synthetic_ratio_by_frequency.png

Prints a markdown table (median ratio per LVIS bucket, rare classes below 1, Spearman's rank
correlation of ratio and image count) and writes the figure, one panel per run.
"""
import argparse
import json
import os

import numpy as np

BUCKETS = {"r": "rare (1-10 images)", "c": "common (11-100)", "f": "frequent (>100)"}
BUCKET_COLORS = {"r": "tab:red", "c": "tab:orange", "f": "tab:blue"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=OUTPUT_DIR[,TRAIN_JSON]",
                        help="a finished training run (repeat for several); TRAIN_JSON, the training set's "
                             "LVIS json, for a set that `import efl.data` does not register")
    parser.add_argument("--output", help="PNG to write (default: no figure)")
    parser.add_argument("--title", help="figure title (default: the runs' losses and what is plotted)")
    args = parser.parse_args(argv)
    runs = []
    for item in args.run:
        label, sep, value = item.partition("=")
        directory, _, json_file = value.partition(",")
        if not sep or not label or not directory:
            parser.error(f"--run {item!r}: expected LABEL=OUTPUT_DIR[,TRAIN_JSON]")
        runs.append((label, directory, json_file or None))
    return args, runs


def run_config(output_dir):
    """The run's saved config.yaml as an OmegaConf tree (its Python objects left out), whose
    interpolations resolve with the project's resolvers (e.g. a custom dataset's
    ``${efl.lvis_format_dataset:...}``, which registers the set)."""
    import yaml
    from omegaconf import OmegaConf

    import efl.data  # noqa: F401  (compatibility fixes; registers the synthetic sets and the resolvers)

    class _Loader(yaml.SafeLoader):
        pass

    # The saved config holds Python objects (ShapeSpec, ...); only plain fields are read here.
    _Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    path = os.path.join(output_dir, "config.yaml")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: {output_dir} is not a training run's output directory")
    with open(path) as f:
        return OmegaConf.create(yaml.load(f, Loader=_Loader)), path


def train_dataset_name(output_dir):
    cfg, path = run_config(output_dir)
    names = cfg.dataloader.train.dataset.names
    if not isinstance(names, str):
        if len(names) != 1:
            raise SystemExit(f"{path}: dataloader.train.dataset.names = {list(names)}; expected one dataset")
        names = names[0]
    return names


def loss_name(output_dir):
    """"EFL", "EQFL", "focal loss" or "QFL": the run's classification loss, from its config
    ("loss unknown" for a directory without config.yaml)."""
    if not os.path.exists(os.path.join(output_dir, "config.yaml")):
        return "loss unknown"
    cfg, _ = run_config(output_dir)
    from omegaconf import OmegaConf

    target = str(OmegaConf.select(cfg, "model.cls_loss._target_", default="") or "")
    scale = float(OmegaConf.select(cfg, "model.cls_loss.scale_factor", default=0.0) or 0.0)
    quality = "Quality" in target
    if scale > 0:
        return "EQFL" if quality else "EFL"
    return "QFL" if quality else "focal loss"


def load_ratio(output_dir):
    """(ratio (C,), iteration) from the run's saved loss buffers."""
    import torch

    path = os.path.join(output_dir, "efl_statistics", "rank0.pth")
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: the run in {output_dir} has not finished, or its model "
                         "has no EFL/EQFL loss")
    state = torch.load(path, map_location="cpu")
    if len(state["buffers"]) != 1:
        raise SystemExit(f"{path}: {len(state['buffers'])} loss modules ({sorted(state['buffers'])}); expected one")
    (buffers,) = state["buffers"].values()
    pos = buffers["pos_grad"].double().numpy()
    neg = buffers["neg_grad"].double().numpy()
    # The loss's own definition of the ratio (EqualizedLossBase.gradient_ratio), unclamped.
    return pos / (neg + 1e-10), int(state["iteration"]) + 1


def training_json(dataset_name):
    """The LVIS json of a dataset registered by `import efl.data`."""
    import efl.data  # noqa: F401  (compatibility fixes before detectron2; registers the synthetic sets)
    from detectron2.data import MetadataCatalog

    json_file = MetadataCatalog.get(dataset_name).get("json_file", None)
    if not json_file:
        raise SystemExit(f"{dataset_name} is not registered by `import efl.data`: give its training json "
                         "as --run LABEL=OUTPUT_DIR,TRAIN_JSON")
    if not os.path.exists(json_file):
        raise SystemExit(f"{json_file} ({dataset_name}) is missing: the run cannot have trained on it here")
    return json_file


def class_table(json_file, num_classes):
    """Per class, from the training json: training image count, LVIS bucket, and whether it is a
    fine-grained sibling (a `parent_id`). Category ids in sorted order give the contiguous class
    indices, as Detectron2 maps them (COCO's ids with gaps included); a COCO file without LVIS's
    `image_count` / `frequency` gets them counted from its annotations with LVIS's rule."""
    from efl.data.frequency import lvis_frequency

    with open(json_file) as f:
        data = json.load(f)
    ordered = sorted(data["categories"], key=lambda c: c["id"])
    if len(ordered) != num_classes:
        raise SystemExit(f"{json_file}: {len(ordered)} categories, but the run's loss has {num_classes} classes")
    images_of = {c["id"]: set() for c in ordered}
    for a in data.get("annotations", []):
        images_of.setdefault(a["category_id"], set()).add(a["image_id"])
    counts = np.array([c.get("image_count", len(images_of[c["id"]])) for c in ordered], dtype=float)
    buckets = np.array([c.get("frequency") or lvis_frequency(int(n)) for c, n in zip(ordered, counts)])
    siblings = np.array([c.get("parent_id") is not None for c in ordered])
    return counts, buckets, siblings


def _average_ranks(x):
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x, y):
    """Spearman's rank correlation (Pearson's on average ranks)."""
    rx, ry = _average_ranks(np.asarray(x)), _average_ranks(np.asarray(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def summarize(label, ratio, counts, buckets, iteration):
    row = {"run": label, "iterations": iteration}
    for b in BUCKETS:
        values = ratio[buckets == b]
        row[f"n_{b}"] = int(len(values))
        row[f"median_{b}"] = float(np.median(values)) if len(values) else float("nan")
    rare = ratio[buckets == "r"]
    row["rare_below_1"] = int((rare < 1).sum())
    row["all_below_1"] = int((ratio < 1).sum())
    row["num_classes"] = int(len(ratio))
    row["spearman"] = spearman(counts, ratio)
    row["min"], row["max"] = float(ratio.min()), float(ratio.max())
    return row


def markdown(rows):
    header = ["run", "iterations", "median P/N r / c / f", "rare < 1", "all < 1", "range",
              "Spearman ρ(ratio, images)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        medians = " / ".join(f"{r[f'median_{b}']:.2f}" for b in BUCKETS)
        lines.append(f"| {r['run']} | {r['iterations']} | {medians} | {r['rare_below_1']}/{r['n_r']} | "
                     f"{r['all_below_1']}/{r['num_classes']} | {r['min']:.2f}-{r['max']:.2f} | "
                     f"{r['spearman']:+.2f} |")
    return "\n".join(lines)


def plot(path, panels, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 0.4 + 3.8 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    positive = [p["ratio"][p["ratio"] > 0] for p in panels]
    high = max([float(r.max()) for r in positive if r.size] or [1.0])
    low = min([float(r.min()) for r in positive if r.size] or [1.0])
    # A class with P_j = 0 (never a positive) has ratio 0, which a log axis cannot show: it is drawn
    # at a floor below every other ratio, as an open marker.
    floor = low / 2
    low = floor if any((p["ratio"] <= 0).any() for p in panels) else low
    for ax, p in zip(axes.flat, panels):
        shown = np.where(p["ratio"] > 0, p["ratio"], floor)
        for b, color in BUCKET_COLORS.items():
            for sibling, marker in ((False, "o"), (True, "^")):
                keep = (p["buckets"] == b) & (p["siblings"] == sibling)
                for zero in (False, True):
                    rows = keep & ((p["ratio"] <= 0) == zero)
                    if rows.any():
                        ax.scatter(p["counts"][rows], shown[rows], marker=marker, s=30, alpha=0.85,
                                   c="none" if zero else color, edgecolors=color if zero else (
                                       "black" if sibling else "none"), linewidths=1.0 if zero else 0.5)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(min(0.5, low / 1.2), max(2.0, high * 1.2))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        # Labelled minor ticks only where the axis spans little more than a decade.
        minor = matplotlib.ticker.FormatStrFormatter("%g") if high / low < 20 else matplotlib.ticker.NullFormatter()
        ax.yaxis.set_minor_formatter(minor)
        ax.set_xlabel("training images containing the class")
        ax.grid(True, alpha=0.3, which="both")
        r = p["row"]
        zeros = int((p["ratio"] <= 0).sum())
        ax.set_title(f"{p['label']}, {r['loss']} ({r['iterations']} it.): ρ = {r['spearman']:+.2f}, "
                     f"rare < 1: {r['rare_below_1']}/{r['n_r']}" + (f", {zeros} at 0 (open)" if zeros else ""),
                     fontsize=9)
    for ax in axes[:, 0]:
        ax.set_ylabel("accumulated P_j / N_j (dashed: 1)")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=c, label=BUCKETS[b])
               for b, c in BUCKET_COLORS.items()]
    if any(p["siblings"].any() for p in panels):
        handles.append(plt.Line2D([], [], marker="^", linestyle="", color="gray", markeredgecolor="black",
                                  label="fine-grained sibling"))
    axes.flat[len(panels) - 1].legend(handles=handles, loc="best", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    args, runs = parse_args(argv)
    rows, panels = [], []
    for label, directory, json_file in runs:
        ratio, iteration = load_ratio(directory)
        counts, buckets, siblings = class_table(json_file or training_json(train_dataset_name(directory)),
                                                len(ratio))
        row = summarize(label, ratio, counts, buckets, iteration)
        row["loss"] = loss_name(directory)
        rows.append(row)
        panels.append({"label": label, "ratio": ratio, "counts": counts, "buckets": buckets,
                       "siblings": siblings, "row": row})
    print(markdown(rows))
    if args.output:
        losses = sorted({r["loss"] for r in rows}, key=[r["loss"] for r in rows].index)
        title = args.title or f"{', '.join(losses)}: accumulated positive / negative gradient per class"
        plot(args.output, panels, title)
        print(f"figure: {args.output}")
    return rows


if __name__ == "__main__":
    main()
