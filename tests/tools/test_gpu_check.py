"""tools/gpu_check.py (`make gpu-check`) on a machine without a GPU: it refuses at once with one
line; its plumbing (time limits, process groups, the junit reading, the report and the table) is
checked with stand-in steps."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]


def load_tool():
    return load_script("tools/gpu_check.py")


gpu_check = load_tool()


def test_without_cuda_it_exits_nonzero_at_once_with_one_line(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so this runs the same on a GPU machine
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "tools/gpu_check.py", "--output-dir", str(tmp_path / "out")],
                          cwd=REPO, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA device: "), proc.stderr
    assert "CUDA_VISIBLE_DEVICES=''" in lines[0]
    assert not (tmp_path / "out").exists()
    assert time.perf_counter() - start < 60


def python_step(name, code, timeout_s=30.0, read_result=None):
    return gpu_check.Step(name, [sys.executable, "-c", code], timeout_s, read_result)


def test_steps_pass_fail_and_time_out_and_a_timeout_ends_the_processes_they_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # a step that starts a process of its own (as pytest starts train_net) and hangs
    hang = (f"import subprocess, time; p = subprocess.Popen(['sleep', '60']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    start = time.perf_counter()
    records = gpu_check.run_steps([
        python_step("ok", "print('fine')"),
        python_step("broken", "import sys; print('oops'); sys.exit(3)"),
        python_step("hangs", hang, timeout_s=3.0),
    ], str(tmp_path))
    assert time.perf_counter() - start < 30
    assert [(r["name"], r["status"], r["returncode"]) for r in records] == [
        ("ok", "passed", 0), ("broken", "failed", 3), ("hangs", "timeout", None)]
    assert (tmp_path / "broken.log").read_text() == "oops\n"
    assert records[2]["timeout_s"] == 3.0
    grandchild = int(pid_file.read_text())
    time.sleep(0.5)
    status = Path(f"/proc/{grandchild}/status")
    # gone, or a zombie waiting for a reaper: either way no longer running
    assert not status.exists() or "State:\tZ" in status.read_text()


def test_the_total_budget_caps_each_step_and_skips_what_is_left(tmp_path):
    records = gpu_check.run_steps([
        python_step("slow", "import time; time.sleep(30)", timeout_s=30.0),
        python_step("after", "print('never')"),
    ], str(tmp_path), total_budget_s=2.0)
    assert records[0]["status"] == "timeout" and records[0]["timeout_s"] <= 2.0
    assert records[1]["status"] == "timeout" and records[1]["log"] is None
    assert not (tmp_path / "after.log").exists()


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="3.2">
<testcase classname="tests.gpu.test_losses_cuda" name="test_a[cuda]" time="1.5"/>
<testcase classname="tests.gpu.test_losses_cuda" name="test_b" time="0.5">
  <failure message="AssertionError: 2 != 1">trace</failure></testcase>
<testcase classname="tests.gpu.test_train_net_cuda" name="test_c" time="0.0">
  <skipped type="pytest.skip" message="no CUDA device: ...">skip</skipped></testcase>
<testcase classname="tests.gpu.test_host_syncs_cuda" name="test_d" time="0.1">
  <error message="fixture failed">trace</error></testcase>
</testsuite></testsuites>
"""


def test_junit_summary_counts_a_hand_written_report(tmp_path):
    path = tmp_path / "tests.xml"
    path.write_text(JUNIT)
    summary = gpu_check.junit_summary(str(path))
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (1, 2, 1)
    outcomes = {c["name"]: (c["outcome"], c["detail"]) for c in summary["cases"]}
    assert outcomes["tests.gpu.test_losses_cuda::test_a[cuda]"] == ("passed", "")
    assert outcomes["tests.gpu.test_losses_cuda::test_b"] == ("failed", "AssertionError: 2 != 1")
    assert outcomes["tests.gpu.test_host_syncs_cuda::test_d"] == ("failed", "fixture failed")
    assert outcomes["tests.gpu.test_train_net_cuda::test_c"][0] == "skipped"


def test_report_json_and_table_hold_every_step_and_its_result(tmp_path, capsys):
    xml_path, loss_path = tmp_path / "tests.xml", tmp_path / "loss.json"
    rows = [{"variant": "efl", "median_ms": 12.4, "peak_mb": 210.0}]
    steps = [
        python_step("tests", f"open({str(xml_path)!r}, 'w').write({JUNIT!r})",
                    read_result=lambda: gpu_check.junit_summary(str(xml_path))),
        python_step("loss", f"import json; json.dump({rows!r}, open({str(loss_path)!r}, 'w'))",
                    read_result=lambda: gpu_check.read_json(str(loss_path))),
        python_step("model", "pass", read_result=lambda: gpu_check.read_json(str(tmp_path / "missing.json"))),
    ]
    (tmp_path / "host_syncs.json").write_text(json.dumps(
        {"improved_baseline": {"forward": 9, "backward": 0, "forward_sites": {}}}))
    records = gpu_check.run_steps(steps, str(tmp_path))
    description = {"device": "NVIDIA Test GPU", "torch": "2.x", "cuda": "12.x"}
    report = gpu_check.write_report(records, str(tmp_path), description)

    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved == report and saved["device"] == "NVIDIA Test GPU"
    # every command exited 0, but a test skipped: on a GPU machine that fails the check
    assert saved["passed"] is False and saved["skipped_tests"] == 1
    assert saved["steps"][0]["result"]["failed"] == 2
    assert saved["steps"][1]["result"] == rows
    assert saved["steps"][2]["result"] is None and "FileNotFoundError" in saved["steps"][2]["result_error"]
    assert saved["host_syncs"]["improved_baseline"]["forward"] == 9

    table = gpu_check.format_table(report)
    assert "| tests | passed |" in table and "1 passed, 2 failed, 1 skipped (test_b, test_d)" in table
    assert "efl 12 ms / 210 MB" in table
    assert "improved_baseline: forward 9, backward 0" in table


def test_the_default_steps_fit_in_eight_minutes_and_name_flags_their_tools_have(tmp_path):
    steps = gpu_check.default_steps(str(tmp_path))
    assert [s.name for s in steps] == ["tests", "loss", "model", "model_amp"]
    assert sum(s.timeout_s for s in steps) <= gpu_check.TOTAL_BUDGET_S <= 8 * 60 - 20  # start-up, report
    assert steps[0].command[1:4] == ["-m", "pytest", "-q"] and "tests/gpu" in steps[0].command
    for step in steps[1:]:
        script = step.command[1]
        help_text = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True,
                                   text=True, timeout=120).stdout
        flags = [arg for arg in step.command[2:] if arg.startswith("--")]
        assert flags and all(flag in help_text for flag in flags), (script, flags)
    assert "800x1333" in steps[2].command and "1203" in steps[2].command and "--amp" in steps[3].command
