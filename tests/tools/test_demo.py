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
    for picture in ("detections.png", "class_statistics.png"):
        with open(out / picture, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Progress and ETA were shown while training (Detectron2's metric printer).
    assert "eta:" in result.stdout + result.stderr
