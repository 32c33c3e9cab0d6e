"""tools/benchmark_loss.py: no silent empty table without CUDA, a failing worker's own error,
defaults in --help, and a real (tiny) measurement."""
import json
import os
import subprocess
import sys

import pytest

from tests.scripts import load_script

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "benchmark_loss.py")


def run_tool(*args, env=None):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def load_tool():
    return load_script("tools/benchmark_loss.py")


def test_device_cuda_without_cuda_is_an_error():
    proc = run_tool("--device", "cuda", env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode != 0
    assert "CUDA is not available" in proc.stderr and "|" not in proc.stdout


def test_help_shows_the_defaults():
    proc = run_tool("--help")
    assert proc.returncode == 0
    assert "(default: 20000)" in proc.stdout and "(default: 1203)" in proc.stdout and "(default: 5)" in proc.stdout


def test_a_failing_worker_shows_its_own_error():
    tool = load_tool()
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('RuntimeError: CUDA out of memory\\n'); sys.exit(3)"]
    with pytest.raises(SystemExit) as exit_info:
        tool.run_worker(failing, "efl on cuda")
    message = str(exit_info.value.code)
    assert "efl on cuda failed (exit code 3)" in message and "CUDA out of memory" in message


def test_tiny_run_writes_a_row_per_variant(tmp_path):
    out = tmp_path / "rows.json"
    proc = run_tool("--device", "cpu", "--num-anchors", "300", "--num-classes", "20", "--repeats", "1",
                    "--variants", "fvcore_focal_autograd", "efl", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["fvcore_focal_autograd", "efl"]
    assert all(r["median_ms"] > 0 and r["num_anchors"] == 300 for r in rows)
    # the spread beside the median, and the load it was measured under
    assert all(r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    assert "min–max (ms)" in proc.stdout and "load average" in proc.stdout
