#!/usr/bin/env python
"""Time and peak memory of the evaluations on synthetic result sets of the real sizes.

- openimages: efl.data.openimages.metric on the Open Images Challenge 2019 validation size
  (41,620 images, 500 classes, 100 detections per image; about 6 boxes, 10 % group-of, and 8
  verified image-level labels per image; a two-level hierarchy of 100 parents x 4 children).
- lvis: the LVIS v1 val size (19,809 images, 1,203 classes, 300 detections per image, about 12
  boxes per image) with each backend of efl.evaluation.LVISEvaluator (hotcoco, and the official
  lvis-api), metrics compared between them.

Each measurement runs in a fresh process: time of the evaluation call (data generation excluded),
peak RSS of that process and its growth over the RSS before the call.

    python tools/benchmark_eval.py                                  # both, real sizes
    python tools/benchmark_eval.py --task openimages --num-images 4162
    python tools/benchmark_eval.py --task lvis --num-images 2000 --lvis-backends hotcoco lvis --json out.json
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_openimages(num_images, num_classes, dets_per_image, seed=0):
    from efl.data.openimages import LabelHierarchy
    from efl.data.openimages.metric import OIDDetections, OIDGroundTruth, evaluate_oid_challenge

    rng = np.random.default_rng(seed)
    parents = num_classes // 5
    tree = {"LabelName": "root", "Subcategory": [
        {"LabelName": f"c{p}", "Subcategory": [{"LabelName": f"c{parents + 4 * p + j}"} for j in range(4)]}
        for p in range(parents)]}
    hierarchy = LabelHierarchy(tree, [f"c{k}" for k in range(num_classes)])
    per_image = rng.integers(1, 12, num_images)
    num_boxes = int(per_image.sum())
    box_image = np.repeat(np.arange(num_images), per_image)
    box_class = rng.integers(0, num_classes, num_boxes)
    xy, wh = rng.uniform(0, 0.8, (num_boxes, 2)), rng.uniform(0.02, 0.2, (num_boxes, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    gt = OIDGroundTruth(
        list(range(num_images)), box_image, box_class, boxes, rng.uniform(size=num_boxes) < 0.1,
        np.repeat(np.arange(num_images), 8), rng.integers(0, num_classes, 8 * num_images),
        rng.uniform(size=8 * num_images) < 0.5,
    )
    # detections: jittered ground-truth boxes of the same image, half of them of another class
    num_dets = num_images * dets_per_image
    first = np.cumsum(per_image) - per_image
    source = np.repeat(first, dets_per_image) + (
        rng.uniform(size=num_dets) * np.repeat(per_image, dets_per_image)).astype(int)
    classes = np.where(rng.uniform(size=num_dets) < 0.5, box_class[source], rng.integers(0, num_classes, num_dets))
    detections = OIDDetections(box_image[source], classes, boxes[source] + rng.normal(0, 0.02, (num_dets, 4)),
                               rng.uniform(size=num_dets))
    before = _rss_mb()
    start = time.perf_counter()
    result = evaluate_oid_challenge(gt, detections, num_classes=num_classes, hierarchy=hierarchy)
    seconds = time.perf_counter() - start
    return {"task": "openimages", "backend": "efl", "images": num_images, "detections": num_dets,
            "seconds": seconds, "peak_rss_mb": _peak_mb(), "peak_growth_mb": _peak_mb() - before,
            "metrics": {"mAP": result.mean_ap}}


def write_lvis(path, num_images, num_classes, seed=0):
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    freq = np.array(["r", "c", "f"])[np.minimum(np.arange(num_classes) * 3 // num_classes, 2)]
    for image_id in range(1, num_images + 1):
        present = rng.choice(num_classes, size=rng.integers(1, 6), replace=False) + 1
        absent = rng.choice(num_classes, size=6, replace=False) + 1
        images.append({"id": image_id, "height": 480, "width": 640,
                       "neg_category_ids": [int(c) for c in absent if c not in present],
                       "not_exhaustive_category_ids": []})
        for c in present:
            for _ in range(rng.integers(1, 5)):
                w, h = (float(v) for v in rng.uniform(8, 300, 2))
                x, y = float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h))
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                    "bbox": [x, y, w, h], "area": w * h,
                                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
    categories = [{"id": c + 1, "name": f"c{c + 1}", "frequency": str(freq[c]), "synset": f"c{c + 1}.n.01",
                   "synonyms": [f"c{c + 1}"], "def": "", "image_count": 1, "instance_count": 1}
                  for c in range(num_classes)]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return annotations


def run_lvis(backend, num_images, num_classes, dets_per_image, seed=0):
    from efl.evaluation import lvis_backend

    rng = np.random.default_rng(seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        gt_file = os.path.join(tmp, "lvis_gt.json")
        annotations = write_lvis(gt_file, num_images, num_classes, seed)
        by_image = {}
        for a in annotations:
            by_image.setdefault(a["image_id"], []).append(a)
        results = []
        for image_id in range(1, num_images + 1):
            mine = by_image.get(image_id, [])
            for k in range(dets_per_image):
                if k < 2 * len(mine):
                    a = mine[k % len(mine)]
                    x, y, w, h = a["bbox"]
                    c = a["category_id"] if rng.uniform() < 0.7 else int(rng.integers(num_classes)) + 1
                    x, y = x + rng.normal(0, 0.1 * w), y + rng.normal(0, 0.1 * h)
                else:
                    w, h = rng.uniform(8, 300, 2)
                    x, y, c = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h), int(rng.integers(num_classes)) + 1
                results.append({"image_id": image_id, "category_id": int(c), "score": float(rng.uniform()),
                                "bbox": [float(x), float(y), float(w), float(h)]})
        before = _rss_mb()
        start = time.perf_counter()
        with lvis_backend(backend):
            from lvis import LVIS, LVISEval, LVISResults

            gt = LVIS(gt_file)
            evaluation = LVISEval(gt, LVISResults(gt, results, max_dets=300), "bbox")
            evaluation.run()
            metrics = {k: float(v) for k, v in evaluation.get_results().items()}
        seconds = time.perf_counter() - start
    return {"task": "lvis", "backend": backend, "images": num_images, "detections": len(results),
            "seconds": seconds, "peak_rss_mb": _peak_mb(), "peak_growth_mb": _peak_mb() - before,
            "metrics": metrics}


def measure(args, task, backend):
    """One measurement in a fresh process."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", task, backend,
           "--num-images", str(args.num_images or DEFAULT_IMAGES[task]),
           "--detections-per-image", str(args.detections_per_image or DEFAULT_DETS[task])]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{task}/{backend} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


DEFAULT_IMAGES = {"openimages": 41620, "lvis": 19809}
DEFAULT_DETS = {"openimages": 100, "lvis": 300}
NUM_CLASSES = {"openimages": 500, "lvis": 1203}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["openimages", "lvis", "both"], default="both")
    parser.add_argument("--num-images", type=int, help="default: the real validation size of the task")
    parser.add_argument("--detections-per-image", type=int, help="default: 100 (Open Images), 300 (LVIS)")
    parser.add_argument("--lvis-backends", nargs="+", default=["hotcoco", "lvis"], choices=["hotcoco", "lvis"])
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import efl  # noqa: F401  (compatibility fixes)

        task, backend = args.child
        if task == "openimages":
            row = run_openimages(args.num_images, NUM_CLASSES[task], args.detections_per_image)
        else:
            row = run_lvis(backend, args.num_images, NUM_CLASSES[task], args.detections_per_image)
        print(json.dumps(row))
        return

    tasks = ["openimages", "lvis"] if args.task == "both" else [args.task]
    rows = []
    for task in tasks:
        for backend in (["efl"] if task == "openimages" else args.lvis_backends):
            rows.append(measure(args, task, backend))
    print("| task | backend | images | detections | time (s) | peak RSS (MB) | peak growth (MB) | main metric |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        key = "mAP" if r["task"] == "openimages" else "AP"
        print(f"| {r['task']} | {r['backend']} | {r['images']:,} | {r['detections']:,} | {r['seconds']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {r['peak_growth_mb']:.0f} | {key} {100 * r['metrics'][key]:.3f} |")
    lvis_rows = [r for r in rows if r["task"] == "lvis"]
    if len(lvis_rows) == 2:
        a, b = (r["metrics"] for r in lvis_rows)
        diff = max(abs(a[k] - b[k]) for k in a if k in b and a[k] == a[k] and b[k] == b[k])
        print(f"LVIS metrics, largest difference between the backends: {diff:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
