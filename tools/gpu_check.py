#!/usr/bin/env python
"""The GPU path checked in one command (`make gpu-check`, README "Checking a GPU machine"): the
CUDA tests and the CUDA benchmarks, each step with its own time limit and all of them within
8 minutes, into one report (JSON) and one printed table.

Steps (limit in seconds):
  tests       pytest tests/gpu: the losses on CUDA against autograd and the CPU, in fp32 and under
              autocast fp16/bf16; AMP training of both families (statistics vs an fp32 forward,
              an overflow step); host syncs under torch.cuda.set_sync_debug_mode;
              tools/train_net.py --num-gpus 1 with AMP and evaluation (200)
  loss        tools/benchmark_loss.py --device cuda: 45,000 anchors x 1,203 classes; a fresh
              process per variant, ~5 s of start-up each (80)
  model       tools/benchmark_model.py --device cuda: 2 images of 800x1333, 1,203 classes, fp32 (90)
  model_amp   the same with --amp (fp16 autocast + GradScaler) (90)

Without a CUDA device it stops at once with one line ("no CUDA device: ...") and exit status 2.
Exit status 1 when a step failed or ran out of time, or a test skipped (on a GPU machine none
should); every step runs in any case, and the report says which and keeps each step's log.

    python tools/gpu_check.py                     # writes output/gpu_check/report.json
    python tools/gpu_check.py --output-dir DIR
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Callable, List, NamedTuple, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL_BUDGET_S = 460.0  # the 8 minutes on one GPU, less the check's own start and report


class Step(NamedTuple):
    name: str
    command: List[str]
    timeout_s: float
    # reads what the step wrote (its JSON, its junit XML) into the report; None: nothing to read
    read_result: Optional[Callable[[], object]] = None


def no_cuda_reason():
    """Why CUDA cannot be used here, or None when a device is present."""
    import torch

    if torch.version.cuda is None:
        return f"no CUDA device: this torch build ({torch.__version__}) has no CUDA support"
    if not torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
        return (f"no CUDA device: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU{hint}; "
                "run `make gpu-check` on a machine with one")
    return None


def junit_summary(path):
    """Counts and per-test outcomes of a pytest ``--junitxml`` file."""
    root = ET.parse(path).getroot()
    cases, counts = [], {"passed": 0, "failed": 0, "skipped": 0}
    for case in root.iter("testcase"):
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, detail = "failed", child.get("message", "")
            elif child.tag == "skipped":
                outcome, detail = "skipped", child.get("message", "")
        counts[outcome] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        cases.append({"name": name, "outcome": outcome, "time_s": float(case.get("time", 0) or 0),
                      "detail": detail[:500]})
    return {**counts, "cases": cases}


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run_step(step, log_path, timeout_s):
    """Run ``step.command`` in its own process group (so a timeout also ends the processes it
    started, e.g. the tests' train_net runs); its output goes to ``log_path``."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(step.command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            returncode = proc.wait(timeout=max(timeout_s, 0.1))
            status = "passed" if returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            returncode, status = None, "timeout"
    record = {"name": step.name, "command": " ".join(step.command), "status": status,
              "returncode": returncode, "wall_s": round(time.perf_counter() - start, 1),
              "timeout_s": round(timeout_s, 1), "log": os.path.relpath(log_path, REPO)}
    if step.read_result is not None:
        try:
            record["result"] = step.read_result()
        except (OSError, ValueError, ET.ParseError) as e:
            record["result"] = None
            record["result_error"] = f"{type(e).__name__}: {e}"
    return record


def run_steps(steps, output_dir, total_budget_s=TOTAL_BUDGET_S):
    """Every step in order; each gets its own limit or what is left of the total, whichever is
    less (a step with nothing left is recorded as a timeout without running)."""
    deadline = time.perf_counter() + total_budget_s
    records = []
    for step in steps:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            records.append({"name": step.name, "command": " ".join(step.command), "status": "timeout",
                            "returncode": None, "wall_s": 0.0, "timeout_s": 0.0,
                            "log": None, "note": "the total budget was spent before this step"})
            continue
        print(f"[gpu-check] {step.name}: {' '.join(step.command)}", file=sys.stderr, flush=True)
        records.append(run_step(step, os.path.join(output_dir, f"{step.name}.log"),
                                min(step.timeout_s, remaining)))
    return records


def default_steps(output_dir):
    python = sys.executable
    path = lambda name: os.path.join(output_dir, name)  # noqa: E731
    return [
        Step("tests", [python, "-m", "pytest", "-q", "-rs", "tests/gpu", f"--junitxml={path('tests.xml')}"],
             200, lambda: junit_summary(path("tests.xml"))),
        Step("loss", [python, "tools/benchmark_loss.py", "--device", "cuda", "--num-anchors", "45000",
                      "--num-classes", "1203", "--repeats", "5", "--json", path("loss.json")],
             80, lambda: read_json(path("loss.json"))),
        Step("model", [python, "tools/benchmark_model.py", "--device", "cuda", "--size", "800x1333",
                       "--num-classes", "1203", "--num-images", "2", "--repeats", "3",
                       "--json", path("model.json")],
             90, lambda: read_json(path("model.json"))),
        Step("model_amp", [python, "tools/benchmark_model.py", "--device", "cuda", "--amp",
                           "--size", "800x1333", "--num-classes", "1203", "--num-images", "2",
                           "--repeats", "3", "--json", path("model_amp.json")],
             90, lambda: read_json(path("model_amp.json"))),
    ]


def step_summary(record):
    """One line of what a step found."""
    result = record.get("result")
    if record["name"] == "tests" and isinstance(result, dict):
        failed = [c["name"].rsplit("::", 1)[-1] for c in result["cases"] if c["outcome"] == "failed"]
        text = f"{result['passed']} passed, {result['failed']} failed, {result['skipped']} skipped"
        return text + (f" ({', '.join(failed[:3])}{', ...' if len(failed) > 3 else ''})" if failed else "")
    if isinstance(result, list) and result and "variant" in result[0]:
        return ", ".join(f"{r['variant']} {r['median_ms']:.0f} ms / {r['peak_mb']:.0f} MB" for r in result)
    if isinstance(result, list) and result and "model" in result[0]:
        return ", ".join(f"{r['model']} {r['train_iter_s']:.3f} s/iter, {r['infer_s_per_image']:.3f} s/img"
                         for r in result)
    return record.get("result_error") or record.get("note") or ""


def format_table(report):
    lines = [f"GPU check: {report['device']}, torch {report['torch']}, CUDA {report['cuda']}",
             "",
             "| step | status | wall s | limit s | result |",
             "|---|---|---|---|---|"]
    for record in report["steps"]:
        lines.append(f"| {record['name']} | {record['status']} | {record['wall_s']:.1f} | "
                     f"{record['timeout_s']:.0f} | {step_summary(record)} |")
    syncs = report.get("host_syncs")
    if syncs:
        lines += ["", "Host syncs of one detector training step (the loss's own: 1):"]
        for family, counts in syncs.items():
            lines.append(f"  {family}: forward {counts['forward']}, backward {counts['backward']}")
    lines += ["", f"all steps passed: {report['passed']}; report: {report['report_path']}"]
    return "\n".join(lines)


def device_description():
    import torch

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda}


def write_report(records, output_dir, description):
    syncs_path = os.path.join(output_dir, "host_syncs.json")
    # On a GPU machine a skipped test is one that did not check what it should: the check fails.
    skipped = sum(r["result"]["skipped"] for r in records
                  if r["name"] == "tests" and isinstance(r.get("result"), dict))
    report = {**description, "steps": records,
              "passed": all(r["status"] == "passed" for r in records) and skipped == 0,
              "skipped_tests": skipped,
              "host_syncs": read_json(syncs_path) if os.path.exists(syncs_path) else None,
              "report_path": os.path.relpath(os.path.join(output_dir, "report.json"), REPO)}
    with open(os.path.join(output_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default=os.path.join(REPO, "output", "gpu_check"),
                        help="where report.json, the steps' logs and their JSON go")
    args = parser.parse_args(argv)

    reason = no_cuda_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    output_dir = os.path.abspath(args.output_dir)
    os.makedirs(output_dir, exist_ok=True)
    stale = os.path.join(output_dir, "host_syncs.json")
    if os.path.exists(stale):
        os.remove(stale)  # written afresh by this run's tests
    # the host-sync test adds the detectors' sync sites here
    os.environ["EFL_GPU_CHECK_DIR"] = output_dir
    records = run_steps(default_steps(output_dir), output_dir)
    report = write_report(records, output_dir, device_description())
    print(format_table(report))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
