#!/usr/bin/env python
"""A benchmark, not a test: does EFL (EQFL) raise APr above focal loss (QFL) without losing APf?

Trains every (loss, seed) pair of the CPU demo detector on the synthetic long-tailed set with the
same schedule, evaluates each with the LVIS evaluator, and reports mean ± std over seeds of AP,
APr, APc and APf per loss, plus each class's g_j and γ_j against its training frequency.

    python tools/longtail_study.py --seeds 0 1 2 --losses focal efl --max-iter 3000
    python tools/longtail_study.py --seeds 0 1 2 --losses qfl eqfl --jobs 2   # 2 runs at a time
    python tools/longtail_study.py --summarize-only        # re-read finished runs

Writes under --output-dir (default ./output/study): <loss>_s<seed>/ per run, study.json,
study.md and class_statistics.png (seed of the first run).
"""
import argparse
import json
import os
import statistics
from concurrent.futures import ThreadPoolExecutor

from _runs import LVIS_METRICS, REPO, markdown_table, read_results, results_path, train, user_overrides

CONFIGS = {
    "focal": "configs/demo/focal_synthetic_small.py",
    "efl": "configs/demo/efl_synthetic_small.py",
    "qfl": "configs/demo/qfl_synthetic_small.py",
    "eqfl": "configs/demo/eqfl_synthetic_small.py",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--losses", nargs="+", default=["focal", "efl"], choices=list(CONFIGS))
    parser.add_argument("--max-iter", type=int, help="train.max_iter of every run (default: the configs')")
    parser.add_argument("--output-dir", default=os.path.join(REPO, "output", "study"))
    parser.add_argument("--summarize-only", action="store_true")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained at the same time, each with cores / jobs threads")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help="key=value overrides for every run")
    return parser.parse_args()


def run_dir(args, loss, seed):
    return os.path.join(args.output_dir, f"{loss}_s{seed}")


def train_one(args, loss, seed):
    out = run_dir(args, loss, seed)
    if os.path.exists(results_path(out)):
        print(f"==> {loss} seed {seed}: finished before, reusing {out}", flush=True)
        return
    overrides = [f"train.seed={seed}"] + ([f"train.max_iter={args.max_iter}"] if args.max_iter else [])
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    seconds = train(CONFIGS[loss], out, overrides + user_overrides(args.overrides),
                    log_file=os.path.join(args.output_dir, f"{loss}_s{seed}.console.txt"), threads=threads)
    print(f"    {loss} seed {seed} done in {seconds:.0f} s", flush=True)


def mean_std(values):
    """(mean, std) over the seeds; (None, None) for a metric absent from the set (null)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def format_mean_std(mean, std):
    return "absent" if mean is None else f"{mean:.1f} ± {std:.1f}"


def summarize(args):
    per_loss = {}
    for loss in args.losses:
        runs = [read_results(run_dir(args, loss, seed))["bbox"] for seed in args.seeds]
        per_loss[loss] = {m: mean_std([r[m] for r in runs]) for m in LVIS_METRICS}
        per_loss[loss]["runs"] = runs
    table = markdown_table(
        ["loss", *LVIS_METRICS],
        [[loss, *(format_mean_std(*stats[m]) for m in LVIS_METRICS)] for loss, stats in per_loss.items()],
    )
    header = (f"mean ± std over seeds {args.seeds}, LVIS box AP on the synthetic long-tailed val set "
              f"(max 300 detections per image)")
    with open(os.path.join(args.output_dir, "study.md"), "w") as f:
        f.write(header + "\n\n" + table + "\n")
    with open(os.path.join(args.output_dir, "study.json"), "w") as f:
        json.dump({"seeds": args.seeds, "max_iter": args.max_iter, "results": per_loss}, f, indent=2)
    print("\n" + header + "\n\n" + table)
    plot_statistics(args)


def plot_statistics(args):
    from detectron2.data import MetadataCatalog

    import efl.data  # noqa: F401  (registers the synthetic set's metadata)
    from efl.engine import load_trained_model
    from efl.visualization import plot_class_statistics

    seed = args.seeds[0]
    models = {}
    for loss in args.losses:
        cfg, models[loss] = load_trained_model(os.path.join(REPO, CONFIGS[loss]),
                                               os.path.join(run_dir(args, loss, seed), "model_final.pth"),
                                               user_overrides(args.overrides))
    path = os.path.join(args.output_dir, "class_statistics.png")
    plot_class_statistics(path, MetadataCatalog.get(cfg.dataloader.train.dataset.names), models,
                          title=f"Final gradient statistics per class (seed {seed})")
    print(f"plot: {path}")


def main():
    args = parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    if args.jobs < 1:
        raise SystemExit("--jobs must be at least 1")
    if not args.summarize_only:
        runs = [(loss, seed) for seed in args.seeds for loss in args.losses]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(train_one, args, loss, seed) for loss, seed in runs]:
                future.result()  # a failed run stops the study with its error
    summarize(args)


if __name__ == "__main__":
    main()
