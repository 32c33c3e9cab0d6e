#!/usr/bin/env python
"""The main job on a CPU machine: train the focal-loss baseline and EFL with the same tiny improved
baseline, schedule and seed on the synthetic long-tailed set, evaluate both with the LVIS evaluator,
print one table, and draw pictures.

    make demo                                  # = python tools/demo.py
    python tools/demo.py --max-iter 300        # a quicker, rougher run
    python tools/demo.py --skip-training       # redraw the table and pictures of a finished run
    python tools/demo.py --family yolox        # the same with a nano YOLOX-IP and its recipe

Writes under --output-dir (default ./output/demo, ./output/demo_yolox for --family yolox):
    focal/, efl/               each run's log, metrics.json, TensorBoard events, checkpoints
    results.json, results.md   the tables below: AP, and the EFL statistics g_j, γ_j per group
    detections.png             validation images: ground truth | focal | EFL
    class_statistics.png       each class's final g_j and γ_j against its training frequency
"""
import argparse
import json
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

from _runs import LVIS_METRICS, REPO, format_metric, markdown_table, read_results, train, user_overrides

FAMILIES = {  # family -> {name -> config}, in the order they train
    # the tiny improved baseline (RetinaNet), `make demo`
    "improved": {
        "focal": "configs/demo/focal_synthetic_small.py",
        "efl": "configs/demo/efl_synthetic_small.py",
    },
    # a nano YOLOX-IP with the YOLOX recipe (Mosaic, MixUp, EMA, no-aug tail) scaled to 160 px
    "yolox": {
        "focal": "configs/demo/focal_yolox_ip_nano_synthetic.py",
        "efl": "configs/demo/efl_yolox_ip_nano_synthetic.py",
    },
}
DEFAULT_OUTPUT_DIRS = {"improved": "demo", "yolox": "demo_yolox"}
RUNS = FAMILIES["improved"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="improved",
                        help="the detector family of both runs (default: improved)")
    parser.add_argument("--output-dir", help="default: ./output/demo (improved), ./output/demo_yolox (yolox)")
    parser.add_argument("--max-iter", type=int, help="override the configs' train.max_iter")
    parser.add_argument("--skip-training", action="store_true", help="reuse finished runs in --output-dir")
    parser.add_argument("--num-pictures", type=int, default=4, help="validation images to draw")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at the same time (default: both)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each run (default 1: a run is reproducible for a given "
                             "seed and thread count, and the README's numbers are at 1 thread)")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value overrides for both runs")
    args = parser.parse_args()
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    if args.output_dir is None:
        args.output_dir = os.path.join(REPO, "output", DEFAULT_OUTPUT_DIRS[args.family])
    return args


def max_iter_overrides(config, max_iter):
    """``--max-iter`` as overrides of ``config``. A config counted in epochs (``train.epoch_iters``,
    the YOLOX recipe) keeps its number of epochs, made shorter, so that warm-up, cosine and the
    no-augmentation tail keep their share of the run."""
    import efl  # noqa: F401  (compatibility fixes before detectron2)
    from detectron2.config import LazyConfig
    from omegaconf import OmegaConf

    cfg = LazyConfig.load(os.path.join(REPO, config))
    epoch_iters = OmegaConf.select(cfg, "train.epoch_iters", default=None)
    if not epoch_iters:
        return [f"train.max_iter={max_iter}"]
    epochs = cfg.train.max_iter // epoch_iters
    epoch_iters = max(1, math.ceil(max_iter / epochs))
    return [f"train.max_iter={epochs * epoch_iters}", f"train.epoch_iters={epoch_iters}"]


def console_path(output_dir, name):
    return os.path.join(output_dir, f"{name}.console.txt")


def show_progress(futures, consoles, period=15.0):
    """While runs train at once (their consoles in files), print each one's latest progress line
    (Detectron2's "eta: ... iter: ..." line) every ``period`` seconds, when it changed."""
    shown = {}
    while not all(f.done() for f in futures):
        time.sleep(min(period, 1.0) if not shown else period)
        for name, path in consoles.items():
            try:
                with open(path) as f:
                    lines = [line for line in f if "eta:" in line]
            except FileNotFoundError:
                continue
            if lines and lines[-1] != shown.get(name):
                shown[name] = lines[-1]
                print(f"[{name}] {lines[-1].split(']:', 1)[-1].strip()}", flush=True)


def train_and_evaluate(name, config, output_dir, args, overrides):
    # with several runs at once, each run's console goes to a file beside its records
    log_file = console_path(output_dir, name) if args.jobs > 1 else None
    if log_file:
        os.makedirs(output_dir, exist_ok=True)
        print(f"==> [{name}] training; console in {log_file}", flush=True)
    seconds = train(config, os.path.join(output_dir, name), overrides + args.overrides,
                    log_file=log_file, threads=args.threads)
    print(f"==> [{name}] done in {seconds:.0f} s", flush=True)


def format_table(results):
    rows = []
    for name, result in results.items():
        seconds = result.get("wall_time_s") or result.get("wall_time") or float("nan")
        rows.append([name, *(format_metric(result["bbox"][m]) for m in LVIS_METRICS), f"{seconds:.0f} s"])
    return markdown_table(["loss", *LVIS_METRICS, "train + eval time"], rows)


def pictures(output_dir, num_pictures, overrides, runs=RUNS):
    import torch
    from detectron2.config import instantiate
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data import detection_utils as utils

    from efl.engine import load_trained_model
    from efl.visualization import draw_detection_grid, plot_class_statistics

    models = {name: load_trained_model(os.path.join(REPO, config),
                                       os.path.join(output_dir, name, "model_final.pth"), overrides)
              for name, config in runs.items()}
    cfg = next(iter(models.values()))[0]
    test_name = cfg.dataloader.test.dataset.names
    train_name = cfg.dataloader.train.dataset.names
    metadata = MetadataCatalog.get(test_name)
    frequency = metadata.class_frequency

    # The validation images with the most rare-class objects: where EFL should make a difference.
    dicts = DatasetCatalog.get(test_name)
    def rare_objects(d):
        return sum(frequency[a["category_id"]] == "r" for a in d["annotations"])
    chosen = sorted(dicts, key=lambda d: (-rare_objects(d), d["image_id"]))[:num_pictures]

    mapper = instantiate(cfg.dataloader.test.mapper)
    images, ground_truths = [], []
    detections = {name: [] for name in models}
    with torch.no_grad():
        for d in chosen:
            image = utils.read_image(d["file_name"], format="RGB")
            images.append(image)
            ground_truths.append(utils.annotations_to_instances(d["annotations"], image.shape[:2]))
            inputs = mapper(dict(d))
            for name, (_, model) in models.items():
                detections[name].append(model([inputs])[0]["instances"].to("cpu"))
    grid = draw_detection_grid(images, ground_truths, detections, metadata)
    detections_png = os.path.join(output_dir, "detections.png")
    _save_png(grid, detections_png)

    statistics_png = os.path.join(output_dir, "class_statistics.png")
    plot_class_statistics(statistics_png, MetadataCatalog.get(train_name),
                          {name: model for name, (_, model) in models.items()},
                          title="Per-class gradient statistics at the end of training")
    statistics = statistics_table(MetadataCatalog.get(train_name), models)
    return detections_png, statistics_png, statistics


def statistics_table(metadata, models):
    """Per run and frequency group: mean g_j and γ_j at the end of training, the median ratio
    P_j / N_j before the clamp, and how many classes are below 1 (where EFL acts)."""
    from efl.data.frequency import class_frequency_groups
    from efl.losses import find_equalized_losses

    rows = []
    for name, (_, model) in models.items():
        (_, loss), = find_equalized_losses(model)
        g, gamma, ratio = loss.pos_neg.cpu(), loss.focusing_factors().cpu(), loss.gradient_ratio().cpu()
        for i, (group, idx) in enumerate(class_frequency_groups(metadata, loss.num_classes).items()):
            rows.append([name if i == 0 else "", group, f"{float(g[idx].mean()):.2f}", f"{float(gamma[idx].mean()):.2f}",
                         f"{float(ratio[idx].median()):.2f}", f"{int((ratio[idx] < 1).sum())}/{len(idx)}"])
    return markdown_table(["loss", "group", "mean g_j", "mean γ_j", "median P_j/N_j", "classes below 1"], rows)


def _save_png(rgb, path):
    from PIL import Image

    Image.fromarray(rgb).save(path)


def main():
    args = parse_args()
    args.overrides = user_overrides(args.overrides)
    runs = FAMILIES[args.family]
    os.makedirs(args.output_dir, exist_ok=True)
    start = time.time()
    if not args.skip_training:
        # read here, one config at a time: Detectron2's LazyConfig.load patches the import
        # machinery while it runs, so two threads loading configs at once can break each other
        overrides = {name: max_iter_overrides(config, args.max_iter) if args.max_iter else []
                     for name, config in runs.items()}
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(train_and_evaluate, name, config, args.output_dir, args, overrides[name])
                       for name, config in runs.items()]
            if args.jobs > 1:
                show_progress(futures, {name: console_path(args.output_dir, name) for name in runs})
            for future in futures:
                future.result()  # a failed run stops the demo with its error

    results = {name: read_results(os.path.join(args.output_dir, name)) for name in runs}
    table = format_table(results)
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.output_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    detections_png, statistics_png, statistics = pictures(args.output_dir, args.num_pictures, args.overrides, runs)
    with open(os.path.join(args.output_dir, "results.md"), "a") as f:
        f.write("\n" + statistics + "\n")
    print("\nLVIS box AP on the synthetic long-tailed validation set (max 300 detections per image); "
          "same detector, schedule and seed:\n")
    print(table)
    print("\nThe EFL statistics at the end of training, per frequency group (γ_j = γ_b + s (1 − g_j); "
          "focal loss has s = 0, so its γ_j stay 2 and its g_j only measure):\n")
    print(statistics)
    print(f"\npictures: {detections_png}\n          {statistics_png}")
    print(f"demo finished in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
