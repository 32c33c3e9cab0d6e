"""tools/ratio_by_frequency.py on an own-data run: a COCO-format training json with gapped category
ids registered at run time through the config's ${efl.lvis_format_dataset:...}, the figure's
title naming the run's loss, and a class with ratio 0 drawn."""
import json
import os
import sys
import warnings

import numpy as np
import pytest
import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import ratio_by_frequency  # noqa: E402

# COCO ids with gaps; images containing each class: 3 -> 1 image, 7 -> 12, 20 -> 150
IDS_AND_IMAGES = {3: 1, 7: 12, 20: 150}


def write_coco(path):
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 32, "width": 32} for i in range(1, 151)]
    annotations = []
    for category_id, count in IDS_AND_IMAGES.items():
        for image_id in range(1, count + 1):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                                "bbox": [2.0, 2.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0})
    categories = [{"id": i, "name": f"class{i}"} for i in IDS_AND_IMAGES]
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)


def write_run(run, train_json, image_root, scale_factor):
    (run / "efl_statistics").mkdir(parents=True)
    # class 0 (id 3) never had a positive: ratio 0; the others rise with their image counts
    pos, neg = torch.tensor([0.0, 0.5, 0.9]), torch.ones(3)
    buffers = {"cls_loss": {"pos_grad": pos, "neg_grad": neg, "pos_neg": pos.clamp(0, 1)}}
    torch.save({"iteration": 9, "buffers": buffers}, run / "efl_statistics" / "rank0.pth")
    config = {
        "dataloader": {"train": {"dataset": {
            "names": f"${{efl.lvis_format_dataset:ratio_tool_own_train,{train_json},{image_root}}}"}}},
        "model": {"cls_loss": {"_target_": "efl.losses.equalized_focal_loss.EqualizedFocalLoss",
                               "scale_factor": scale_factor}},
    }
    with open(run / "config.yaml", "w") as f:
        yaml.safe_dump(config, f)


def test_own_coco_data_with_gapped_ids_registered_by_the_runs_config(tmp_path):
    train_json = tmp_path / "train.json"
    write_coco(train_json)
    run = tmp_path / "run"
    write_run(run, train_json, tmp_path, scale_factor=8.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no matplotlib warning (log of 0)
        (row,) = ratio_by_frequency.main(["--run", f"mine={run}", "--output", str(tmp_path / "fig.png")])
    # buckets counted from the annotations with LVIS's rule: 1 image rare, 12 common, 150 frequent
    assert (row["n_r"], row["n_c"], row["n_f"]) == (1, 1, 1)
    assert row["median_r"] == 0.0 and row["median_c"] == pytest.approx(0.5) and row["median_f"] == pytest.approx(0.9)
    assert row["loss"] == "EFL" and row["spearman"] == pytest.approx(1.0)
    assert os.path.getsize(tmp_path / "fig.png") > 0


def test_the_loss_is_read_from_the_config(tmp_path):
    train_json = tmp_path / "train.json"
    write_coco(train_json)
    for scale, expected in ((0.0, "focal loss"), (4.0, "EFL")):
        run = tmp_path / f"run{scale}"
        write_run(run, train_json, tmp_path, scale_factor=scale)
        assert ratio_by_frequency.loss_name(str(run)) == expected


def test_class_table_maps_sorted_ids_to_contiguous_classes(tmp_path):
    train_json = tmp_path / "train.json"
    write_coco(train_json)
    counts, buckets, siblings = ratio_by_frequency.class_table(str(train_json), 3)
    assert counts.tolist() == [1.0, 12.0, 150.0] and buckets.tolist() == ["r", "c", "f"]
    assert not siblings.any()
    with pytest.raises(SystemExit, match="3 categories"):
        ratio_by_frequency.class_table(str(train_json), 4)
