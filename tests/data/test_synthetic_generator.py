import collections
import dataclasses
import multiprocessing
import os

import numpy as np
import pytest
from lvis import LVIS, LVISEval, LVISResults

from detectron2.data.datasets.lvis import load_lvis_json
from efl.data.frequency import lvis_frequency
from efl.data.synthetic import PRESETS, ensure_generated, generate
from efl.data.synthetic.__main__ import main as cli_main

from .conftest import MEDIUM, load_json


def _all_files(root):
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if name != "generator.json":  # holds the generation time
                with open(path, "rb") as f:
                    files[os.path.relpath(path, root)] = f.read()
    return files


def test_same_seed_gives_identical_json_and_image_bytes(tiny_root, tmp_path):
    again = str(tmp_path / "again")
    generate(PRESETS["tiny"], again)
    first, second = _all_files(tiny_root), _all_files(again)
    assert len(first) == 2 + 40 + 20
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)

    other_seed = str(tmp_path / "other_seed")
    generate(dataclasses.replace(PRESETS["tiny"], seed=1), other_seed)
    third = _all_files(other_seed)
    assert third["annotations/synthetic_lt_train.json"] != first["annotations/synthetic_lt_train.json"]


def test_official_lvis_api_reads_the_json_and_scores_perfect_detections_as_ap_1(tiny_root):
    val_json = os.path.join(tiny_root, "annotations", "synthetic_lt_val.json")
    gt = LVIS(val_json)
    assert sorted(gt.cats) == list(range(1, 13))
    assert len(gt.imgs) == 20 and len(gt.anns) > 20
    # The ground truth as detections: federated evaluation must find every class perfectly.
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt.anns.values()
    ]
    evaluator = LVISEval(gt, LVISResults(gt, detections, max_dets=300), "bbox")
    evaluator.run()
    results = evaluator.get_results()
    assert results["AP"] == pytest.approx(1.0)
    assert results["APr"] == pytest.approx(1.0) and results["APc"] == pytest.approx(1.0)


def test_false_positives_on_listed_negative_classes_lower_ap(tiny_root):
    val_json = os.path.join(tiny_root, "annotations", "synthetic_lt_val.json")
    gt = LVIS(val_json)
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.5}
        for a in gt.anns.values()
    ]
    # A confident detection of a verified-absent class in every image.
    negatives = [
        {"image_id": i, "category_id": img["neg_category_ids"][0], "bbox": [0, 0, 20, 20], "score": 0.9}
        for i, img in gt.imgs.items()
    ]
    evaluator = LVISEval(gt, LVISResults(gt, perfect + negatives, max_dets=300), "bbox")
    evaluator.run()
    assert evaluator.get_results()["AP"] < 0.99


def test_detectron2_load_lvis_json_reads_the_json_and_finds_every_image(tiny_root):
    dicts = load_lvis_json(
        os.path.join(tiny_root, "annotations", "synthetic_lt_train.json"), os.path.join(tiny_root, ""), None
    )
    assert len(dicts) == 40
    raw = load_json(tiny_root, "train")
    assert sum(len(d["annotations"]) for d in dicts) == len(raw["annotations"])
    for d in dicts:
        assert os.path.isfile(d["file_name"]) and os.path.dirname(d["file_name"]).endswith("train")
        assert all(0 <= a["category_id"] < 12 for a in d["annotations"])


def test_frequency_buckets_follow_lvis_rule_on_train_image_counts(medium_root):
    train = load_json(medium_root, "train")
    images_of = collections.defaultdict(set)
    for a in train["annotations"]:
        images_of[a["category_id"]].add(a["image_id"])
    for c in train["categories"]:
        n = len(images_of[c["id"]])
        assert c["image_count"] == n >= 1
        expected = "r" if n <= 10 else ("c" if n <= 100 else "f")
        assert c["frequency"] == expected == lvis_frequency(n)
    buckets = collections.Counter(c["frequency"] for c in train["categories"])
    assert buckets["r"] >= 5 and buckets["c"] >= 5 and buckets["f"] >= 3
    # Long tail: the head class is in a large share of the images, the tail in one.
    counts = sorted((len(v) for v in images_of.values()), reverse=True)
    assert counts[0] >= 100 and counts[-1] == 1
    # The validation file carries the same categories (counted on train), like LVIS v1.
    assert load_json(medium_root, "val")["categories"] == train["categories"]


def test_validation_split_holds_every_class_often_enough(medium_root):
    val = load_json(medium_root, "val")
    images_of = collections.defaultdict(set)
    for a in val["annotations"]:
        images_of[a["category_id"]].add(a["image_id"])
    assert all(len(images_of[c["id"]]) >= MEDIUM.min_val_images_per_class for c in val["categories"])


def test_images_match_json_and_negatives_are_absent(medium_root):
    import cv2

    for split in ("train", "val"):
        data = load_json(medium_root, split)
        present = collections.defaultdict(set)
        for a in data["annotations"]:
            present[a["image_id"]].add(a["category_id"])
        image_ids = {img["id"] for img in data["images"]}
        assert len(image_ids) == len(data["images"]) and set(present) <= image_ids
        for img in data["images"][:20]:
            h, w = cv2.imread(os.path.join(medium_root, split, img["file_name"])).shape[:2]
            assert (h, w) == (img["height"], img["width"])
            assert img["coco_url"].endswith(f"/{split}/{img['file_name']}")
        for img in data["images"]:
            assert img["neg_category_ids"] and not set(img["neg_category_ids"]) & present[img["id"]]
        image_of = {img["id"]: img for img in data["images"]}
        for a in data["annotations"]:
            x, y, w, h = a["bbox"]
            img = image_of[a["image_id"]]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and 0 < a["area"] <= w * h
            assert x + w <= img["width"] and y + h <= img["height"]
    train, val = load_json(medium_root, "train"), load_json(medium_root, "val")
    assert not {i["id"] for i in train["images"]} & {i["id"] for i in val["images"]}
    assert not {a["id"] for a in train["annotations"]} & {a["id"] for a in val["annotations"]}


def _ensure(args):
    spec, cache_root = args
    return ensure_generated(spec, cache_root)


def test_concurrent_first_use_yields_one_complete_set(tmp_path):
    cache_root = str(tmp_path / "cache")
    spec = dataclasses.replace(PRESETS["tiny"], seed=7)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        roots = pool.map(_ensure, [(spec, cache_root)] * 2)
    assert roots[0] == roots[1]
    # Only the final directory (and the lock file) remain: no temporary or half-written set.
    assert sorted(os.listdir(cache_root)) == sorted([os.path.basename(roots[0]), f".{spec.cache_key()}.lock"])
    reference = str(tmp_path / "reference")
    generate(spec, reference)
    assert _all_files(roots[0]) == _all_files(reference)


def test_cli_generates_a_set_with_the_requested_sizes(tmp_path, capsys):
    out = str(tmp_path / "cli")
    cli_main(["--preset", "tiny", "--num-classes", "10", "--num-val-images", "16", "--seed", "3", "--output-dir", out])
    val = load_json(out, "val")
    assert len(val["categories"]) == 10 and len(val["images"]) == 16
    assert "written to" in capsys.readouterr().out
    # The written directory registers like the cached presets.
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from efl.data import register_synthetic_lt_dir

    register_synthetic_lt_dir("efl_test_cli", out)
    assert len(DatasetCatalog.get("efl_test_cli_val")) == 16
    meta = MetadataCatalog.get("efl_test_cli_train")
    assert meta.thing_classes == [c["name"] for c in val["categories"]] and meta.evaluator_type == "lvis"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    assert "--num-train-images" in capsys.readouterr().out


def test_bucket_sizes_of_the_default_preset_follow_lvis_proportions():
    from efl.data.synthetic import category_metadata

    categories = category_metadata(PRESETS["default"])
    buckets = collections.Counter(c["frequency"] for c in categories)
    # LVIS v1: 405 frequent, 461 common, 337 rare of 1203 classes.
    for bucket, lvis_share in (("f", 405 / 1203), ("c", 461 / 1203), ("r", 337 / 1203)):
        assert abs(buckets[bucket] / len(categories) - lvis_share) < 0.05
    counts = np.array([c["image_count"] for c in categories])
    assert counts.max() == round(0.3 * PRESETS["default"].num_train_images) and counts.min() == 1


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--num-classes", "1", "--num-train-images", "5"], "--num-train-images"),
        (["--num-train-images", "0"], "--num-train-images"),
        (["--num-val-images", "-3"], "--num-val-images"),
        (["--num-classes", "500"], "--num-classes"),
        (["--image-size", "8"], "--image-size"),
    ],
)
def test_cli_rejects_impossible_sizes_at_argument_parsing(tmp_path, capsys, arguments, named):
    out = tmp_path / "set"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--output-dir", str(out)] + arguments)
    assert exit_info.value.code == 2  # argparse's usage error, before anything is written
    assert f"argument {named}:" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_failure_while_writing_leaves_nothing_that_blocks_a_rerun(tmp_path, monkeypatch, capsys):
    import efl.data.synthetic.__main__ as cli

    def dies_half_way(spec, out_dir):
        generate(spec, out_dir)
        raise RuntimeError("killed half way")

    out = tmp_path / "set"
    monkeypatch.setattr(cli, "generate", dies_half_way)
    with pytest.raises(SystemExit, match="nothing was written"):
        cli_main(["--output-dir", str(out), "--preset", "tiny"])
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(cli, "generate", generate)
    cli_main(["--output-dir", str(out), "--preset", "tiny"])
    assert sorted(os.listdir(out)) == ["annotations", "generator.json", "train", "val"]
