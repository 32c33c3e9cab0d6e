"""tools/benchmark_model.py: LVIS-sized inputs (HEIGHTxWIDTH), and a clear refusal of --device cuda
and --amp without CUDA (the GPU check, tools/gpu_check.py, relies on both)."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import load_script

TOOL = Path(__file__).resolve().parents[2] / "tools" / "benchmark_model.py"


def load_tool():
    return load_script("tools/benchmark_model.py")


@pytest.mark.parametrize("text, size", [("512", (512, 512)), ("800x1333", (800, 1333)), ("64X96", (64, 96))])
def test_size_is_a_side_or_height_by_width(text, size):
    assert load_tool().parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "800x", "x1333", "800x1333x3", "big", "-5x10"])
def test_a_malformed_size_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"HEIGHTxWIDTH \(800x1333\)"):
        load_tool().parse_size(text)


def test_boxes_of_a_non_square_batch_lie_inside_their_pictures():
    batch = load_tool().make_batch(3, (64, 200), num_classes=1203, device="cpu")
    for sample in batch:
        assert tuple(sample["image"].shape) == (3, 64, 200)
        assert sample["instances"].image_size == (64, 200)
        boxes = sample["instances"].gt_boxes.tensor
        assert (boxes[:, 2] <= 200).all() and (boxes[:, 3] <= 64).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        # the width range is used, not just a square of the height's side
        assert boxes[:, 2].max() > 64


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "--device cuda: CUDA is not available"),
    (["--device", "cpu", "--amp"], "--amp needs CUDA"),
])
def test_cuda_options_without_cuda_are_refused_before_any_model_is_built(args, message):
    proc = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == ""
