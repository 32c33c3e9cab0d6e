"""tools/benchmark_mapper.py: the generated JPEGs are valid training data, and a short run times
the mapper against the decode of exactly the 5 images each sample reads."""
import json
import os
import subprocess
import sys

import numpy as np
from detectron2.data import detection_utils as utils

from tests.scripts import load_script

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "benchmark_mapper.py")
benchmark_mapper = load_script("tools/benchmark_mapper.py")


def test_generated_jpegs_have_lvis_like_sizes_and_boxes_inside_them(tmp_path):
    dicts = benchmark_mapper.write_jpegs(str(tmp_path), 8)
    for d in dicts:
        image = utils.read_image(d["file_name"], format="BGR")
        assert image.shape == (d["height"], d["width"], 3) and max(image.shape[:2]) == 640
        assert image.std() > 10  # textured, not a flat colour that decodes unrealistically fast
        boxes = np.array([a["bbox"] for a in d["annotations"]])  # XYWH
        assert 2 <= len(boxes) <= 12
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= d["width"]).all()
        assert (boxes[:, 1] + boxes[:, 3] <= d["height"]).all()


def test_a_short_run_reports_mapper_decode_and_every_step(tmp_path, monkeypatch, capsys):
    import cv2

    out = tmp_path / "mapper.json"
    monkeypatch.setattr(sys, "argv", ["benchmark_mapper.py", "--samples", "2", "--warmup", "1", "--images", "3",
                                      "--input-size", "128", "--profile", "--json", str(out)])
    threads = cv2.getNumThreads()
    try:
        benchmark_mapper.main()
    finally:
        cv2.setNumThreads(threads)
    numbers = json.loads(out.read_text())
    assert numbers["mapper_ms"] > 0 and numbers["decode_ms"] > 0 and numbers["input_size"] == 128
    # the mapper's own decode is one of its steps; Mosaic, the affine warp and MixUp ran every time
    assert {"decode (read_image)", "mosaic", "warp_affine", "mixup", "hsv_jitter"} <= set(numbers["steps_ms"])
    assert "mapper / decode" in capsys.readouterr().out


def test_bad_counts_are_argument_errors():
    result = subprocess.run([sys.executable, TOOL, "--samples", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--samples" in result.stderr
