"""The demo end to end on the tiny synthetic preset: both losses train briefly, the LVIS evaluator
scores their detections above zero, and the table and pictures are written."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "dataloader.train.dataset.names=synthetic_lt_tiny_train",
    "dataloader.test.dataset.names=synthetic_lt_tiny_val",
    "model.num_classes=12",
    "train.log_period=20",
    "train.checkpointer.period=100000",
]


def test_demo_trains_both_losses_scores_above_zero_and_draws_pictures(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "demo.py"), "--max-iter", "120",
         "--output-dir", str(out), "--num-pictures", "2", *TINY],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    assert set(results) == {"focal", "efl"}
    for name, metrics in results.items():
        bbox = metrics["bbox"]
        assert set(["AP", "AP50", "APr", "APc", "APf"]) <= set(bbox)
        assert bbox["AP"] > 0, (name, bbox)  # the detector learned something the evaluator scores
    table = (out / "results.md").read_text()
    assert "| focal |" in table and "| efl |" in table
    # the tiny preset has no frequent class: APf is absent (null), not -100
    assert results["focal"]["bbox"]["APf"] is None and "| absent |" in table
    # the statistics table beside it: focal's γ_j stay γ_b = 2 in every group (the tiny preset
    # has rare and common classes only)
    assert "mean γ_j" in table
    focal_rows = table[table.index("| focal | rare"):table.index("| efl | rare")].splitlines()
    assert [row.split("|")[4].strip() for row in focal_rows] == ["2.00", "2.00"]
    # the demo configs record the bias ledger: on the real detector, the loss's statistics equal
    # the classification bias's SGD trajectory plus its weight-decay pull (docs/method.md §8)
    for name in ("focal", "efl"):
        with open(out / name / "bias_ledger.json") as f:
            terms = json.load(f)["terms"]
        scale = max(abs(v) for v in terms["weight_decay_pull"])
        assert max(abs(v) for v in terms["residual"]) < 1e-4 * scale, name
    for picture in ("detections.png", "class_statistics.png"):
        with open(out / picture, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Progress and ETA were shown while training (Detectron2's metric printer).
    assert "eta:" in result.stdout + result.stderr
